#Requires -Version 5.1
<#
.SYNOPSIS
    bdevault agent: escrows BitLocker recovery passwords, performs requested rotations and forwards
    BitLocker events to a bdevault server. Meant to run as a scheduled task under SYSTEM.

.DESCRIPTION
    Each run:
      1. enrolls once (with -EnrollmentToken), keeping the device credential DPAPI-protected for the
         machine in the state directory;
      2. escrows every volume's numerical-password protectors;
      3. checks in and performs each rotation the server hands out: add a new recovery password
         protector, escrow it, remove the old protector, report the result;
      4. forwards BitLocker-API events (521-531, 823/824, 782/805, 775/776) since the last run.
    Recovery passwords go only into the HTTPS request body of the escrow call; they are never
    written to the log, the console, the state file or a URL.

.PARAMETER ServerUrl
    Base URL of the bdevault server, e.g. https://vault.contoso.com. HTTPS is required unless
    -AllowHttp is given (for a lab only).

.PARAMETER EnrollmentToken
    A one-time enrollment token from the server (POST /api/enrollment-tokens). Needed on the first
    run only; later runs use the stored device credential.

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File bdevault-agent.ps1 -ServerUrl https://vault.contoso.com -EnrollmentToken bdv_et_...
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory = $true)]
    [string] $ServerUrl,

    [string] $EnrollmentToken,

    [string] $StateDirectory = (Join-Path $env:ProgramData 'bdevault'),

    [switch] $AllowHttp,

    [switch] $SkipEvents
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$AgentVersion = '1.0.0'
$EventLogName = 'Microsoft-Windows-BitLocker/BitLocker Management'
$ForwardedEventIds = @(521, 522, 523, 524, 525, 526, 527, 528, 529, 530, 531, 823, 824, 782, 805, 775, 776)
$MaxEventsPerBatch = 200
$CredentialFile = Join-Path $StateDirectory 'device-credential.bin'
$StateFile = Join-Path $StateDirectory 'state.json'
$LogFile = Join-Path $StateDirectory 'agent.log'

# ---------------------------------------------------------------------------------------------
# Logging: messages only. Callers never pass a recovery password here; Protect-LogText is a last
# line of defence that blanks anything shaped like one (8 groups of 6 digits).
# ---------------------------------------------------------------------------------------------
function Protect-LogText([string] $Text) {
    return [regex]::Replace($Text, '\d{6}(?:[\s-]?\d{6}){7}', '[redacted]')
}

function Write-AgentLog([string] $Level, [string] $Message) {
    $line = '{0} {1} {2}' -f (Get-Date).ToUniversalTime().ToString('o'), $Level, (Protect-LogText $Message)
    Add-Content -LiteralPath $LogFile -Value $line -Encoding UTF8
    Write-Verbose $line
}

# ---------------------------------------------------------------------------------------------
# State directory: SYSTEM and Administrators only, so the protected credential is not readable by users.
# ---------------------------------------------------------------------------------------------
function Initialize-StateDirectory {
    if (-not (Test-Path -LiteralPath $StateDirectory)) {
        New-Item -ItemType Directory -Path $StateDirectory -Force | Out-Null
    }
    $acl = New-Object System.Security.AccessControl.DirectorySecurity
    $acl.SetAccessRuleProtection($true, $false)
    $inherit = [System.Security.AccessControl.InheritanceFlags]'ContainerInherit, ObjectInherit'
    $none = [System.Security.AccessControl.PropagationFlags]::None
    foreach ($sid in @('S-1-5-18', 'S-1-5-32-544')) {
        $identity = New-Object System.Security.Principal.SecurityIdentifier($sid)
        $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($identity, 'FullControl', $inherit, $none, 'Allow')
        $acl.AddAccessRule($rule)
    }
    Set-Acl -LiteralPath $StateDirectory -AclObject $acl
}

# ---------------------------------------------------------------------------------------------
# Device credential, DPAPI-protected with machine scope (readable by this machine only).
# ---------------------------------------------------------------------------------------------
Add-Type -AssemblyName System.Security

function Save-DeviceCredential([string] $Credential) {
    $bytes = [System.Text.Encoding]::UTF8.GetBytes($Credential)
    $protected = [System.Security.Cryptography.ProtectedData]::Protect(
        $bytes, $null, [System.Security.Cryptography.DataProtectionScope]::LocalMachine)
    [System.IO.File]::WriteAllBytes($CredentialFile, $protected)
}

function Read-DeviceCredential {
    if (-not (Test-Path -LiteralPath $CredentialFile)) { return $null }
    $protected = [System.IO.File]::ReadAllBytes($CredentialFile)
    $bytes = [System.Security.Cryptography.ProtectedData]::Unprotect(
        $protected, $null, [System.Security.Cryptography.DataProtectionScope]::LocalMachine)
    return [System.Text.Encoding]::UTF8.GetString($bytes)
}

function Read-AgentState {
    if (Test-Path -LiteralPath $StateFile) {
        return Get-Content -LiteralPath $StateFile -Raw -Encoding UTF8 | ConvertFrom-Json
    }
    return [pscustomobject]@{ deviceId = $null; lastEventRecordId = 0; lastEventTime = $null }
}

function Save-AgentState($State) {
    $State | ConvertTo-Json -Depth 4 | Set-Content -LiteralPath $StateFile -Encoding UTF8
}

# ---------------------------------------------------------------------------------------------
# HTTP: JSON over HTTPS with the bearer credential. Error bodies carry a code and a message, never
# a password; the request body (which may hold one) is never logged.
# ---------------------------------------------------------------------------------------------
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12

function Invoke-Vault([string] $Method, [string] $Path, $Body, [string] $Bearer) {
    $uri = $ServerUrl.TrimEnd('/') + $Path
    $headers = @{ Authorization = "Bearer $Bearer" }
    $json = if ($null -ne $Body) { $Body | ConvertTo-Json -Depth 8 -Compress } else { '{}' }
    try {
        return Invoke-RestMethod -Method $Method -Uri $uri -Headers $headers -ContentType 'application/json; charset=utf-8' `
            -Body ([System.Text.Encoding]::UTF8.GetBytes($json)) -UseBasicParsing -TimeoutSec 60
    } catch {
        $status = $null
        # Under strict mode a missing property throws: only web exceptions carry a response.
        if ($_.Exception.PSObject.Properties['Response'] -and $_.Exception.Response) {
            $status = [int]$_.Exception.Response.StatusCode
        }
        $detail = $null
        if ($_.ErrorDetails -and $_.ErrorDetails.Message) {
            try { $detail = ($_.ErrorDetails.Message | ConvertFrom-Json).error.code } catch { $detail = $null }
        }
        throw ("{0} {1} failed: HTTP {2} {3}" -f $Method, $Path, $status, $detail)
    }
}

function Assert-ServerUrl {
    if (-not $AllowHttp -and -not $ServerUrl.StartsWith('https://', [System.StringComparison]::OrdinalIgnoreCase)) {
        throw 'ServerUrl must be https:// (use -AllowHttp only in a lab)'
    }
}

# ---------------------------------------------------------------------------------------------
# Inventory
# ---------------------------------------------------------------------------------------------
function Get-DeviceFacts {
    $os = Get-CimInstance -ClassName Win32_OperatingSystem
    $bios = Get-CimInstance -ClassName Win32_BIOS
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem
    $facts = [ordered]@{
        os           = ('{0} {1}' -f $os.Caption, $os.Version).Trim()
        serialNumber = [string]$bios.SerialNumber
    }
    if ($cs.Domain) { $facts.dnsName = ('{0}.{1}' -f $env:COMPUTERNAME, $cs.Domain).ToLowerInvariant() }
    if ($cs.UserName) { $facts.registeredOwner = [string]$cs.UserName }
    return $facts
}

function ConvertTo-VolumeType($Volume) {
    switch ([string]$Volume.VolumeType) {
        'OperatingSystem' { return 'os' }
        'FixedData' { return 'fixed' }
        default { return 'removable' }
    }
}

function ConvertTo-Guid([string] $Text) {
    return ([guid]$Text).ToString().ToUpperInvariant()
}

function Get-VolumeGuid($Volume) {
    # Win32_EncryptableVolume.DeviceID is \\?\Volume{GUID}\; it names the volume across drive letters.
    $letter = [string]$Volume.MountPoint
    # A volume without a drive letter is mounted as \\?\Volume{GUID}\: the GUID is right there.
    if ($letter -match '^\\\\\?\\Volume\{([0-9A-Fa-f-]{36})\}') { return $Matches[1].ToUpperInvariant() }
    $ev = Get-CimInstance -Namespace 'root\cimv2\Security\MicrosoftVolumeEncryption' -ClassName Win32_EncryptableVolume |
        Where-Object { $_.DriveLetter -eq $letter.TrimEnd('\') }
    if ($ev -and $ev.DeviceID -match '\{([0-9A-Fa-f-]{36})\}') { return $Matches[1].ToUpperInvariant() }
    return $null
}

function Get-EscrowVolumes {
    $volumes = @()
    foreach ($v in Get-BitLockerVolume) {
        $passwords = @($v.KeyProtector | Where-Object { $_.KeyProtectorType -eq 'RecoveryPassword' })
        if ($passwords.Count -eq 0) { continue }
        $guid = Get-VolumeGuid $v
        if (-not $guid) {
            Write-AgentLog 'WARN' ("volume {0}: no volume GUID found; skipped" -f $v.MountPoint)
            continue
        }
        $entry = [ordered]@{
            volumeGuid       = $guid
            volumeType       = ConvertTo-VolumeType $v
            encryptionMethod = [string]$v.EncryptionMethod
            protectionStatus = [string]$v.ProtectionStatus
            recoveryKeys     = @($passwords | ForEach-Object {
                    [ordered]@{ recoveryKeyId = (ConvertTo-Guid $_.KeyProtectorId); recoveryPassword = [string]$_.RecoveryPassword }
                })
        }
        if ($v.MountPoint -match '^[A-Za-z]:') { $entry.driveLetter = $v.MountPoint.Substring(0, 2) }
        $volumes += $entry
    }
    return , $volumes
}

# ---------------------------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------------------------
function Invoke-Enrollment($State) {
    if (-not $EnrollmentToken) { throw 'Not enrolled yet: run once with -EnrollmentToken' }
    $facts = Get-DeviceFacts
    $facts.name = $env:COMPUTERNAME
    $result = Invoke-Vault 'POST' '/api/escrow/enroll' @{ device = $facts } $EnrollmentToken
    Save-DeviceCredential $result.deviceCredential
    $State.deviceId = $result.deviceId
    Save-AgentState $State
    Write-AgentLog 'INFO' ("enrolled as device {0}" -f $result.deviceId)
}

function Invoke-Escrow([string] $Credential) {
    $volumes = Get-EscrowVolumes
    if ($volumes.Count -eq 0) {
        Write-AgentLog 'INFO' 'no volume has a recovery password protector; nothing to escrow'
        return
    }
    $body = @{ device = (Get-DeviceFacts); volumes = $volumes }
    $result = Invoke-Vault 'POST' '/api/escrow/recovery-keys' $body $Credential
    foreach ($v in $result.volumes) {
        foreach ($k in $v.recoveryKeys) {
            Write-AgentLog 'INFO' ("escrowed key {0} on volume {1} (status {2}, new {3})" -f $k.recoveryKeyId, $v.volumeGuid, $k.status, $k.created)
        }
    }
}

function Find-VolumeByGuid([string] $VolumeGuid) {
    foreach ($v in Get-BitLockerVolume) {
        if ((Get-VolumeGuid $v) -eq $VolumeGuid) { return $v }
    }
    return $null
}

function Invoke-Rotation([string] $Credential, $Action) {
    $rotationId = $Action.rotationId
    $oldId = ConvertTo-Guid $Action.recoveryKeyId
    try {
        $volume = Find-VolumeByGuid $Action.volumeGuid
        if (-not $volume) { throw "volume $($Action.volumeGuid) not found on this device" }
        $mount = $volume.MountPoint
        $before = @($volume.KeyProtector | Where-Object { $_.KeyProtectorType -eq 'RecoveryPassword' } |
                ForEach-Object { ConvertTo-Guid $_.KeyProtectorId })

        # 1. Add the new protector (Windows generates the password) unless an earlier attempt did.
        $added = Add-BitLockerKeyProtector -MountPoint $mount -RecoveryPasswordProtector -WarningAction SilentlyContinue
        $after = @($added.KeyProtector | Where-Object { $_.KeyProtectorType -eq 'RecoveryPassword' })
        $new = $after | Where-Object { $before -notcontains (ConvertTo-Guid $_.KeyProtectorId) } | Select-Object -First 1
        if (-not $new) { throw 'the new recovery password protector was not found after adding it' }
        $newId = ConvertTo-Guid $new.KeyProtectorId

        # 2. Escrow the volume's protectors (old and new) before anything is removed: the vault must
        #    hold a working password at every moment.
        Invoke-Escrow $Credential

        # 3. Remove the old protector, then confirm it is gone.
        if ($before -contains $oldId) {
            $old = $volume.KeyProtector | Where-Object { (ConvertTo-Guid $_.KeyProtectorId) -eq $oldId } | Select-Object -First 1
            Remove-BitLockerKeyProtector -MountPoint $mount -KeyProtectorId $old.KeyProtectorId | Out-Null
        }
        $remaining = @((Get-BitLockerVolume -MountPoint $mount).KeyProtector | ForEach-Object { ConvertTo-Guid $_.KeyProtectorId })
        if ($remaining -contains $oldId) { throw 'the old protector is still present after removal' }

        # 4. Escrow again so the vault's current set no longer lists the old key, then report.
        Invoke-Escrow $Credential
        Invoke-Vault 'POST' "/api/escrow/rotations/$rotationId/result" @{
            outcome             = 'completed'
            newRecoveryKeyId    = $newId
            oldProtectorRemoved = $true
        } $Credential | Out-Null
        Write-AgentLog 'INFO' ("rotation {0}: replaced key {1} with {2}" -f $rotationId, $oldId, $newId)
    } catch {
        $reason = Protect-LogText ([string]$_.Exception.Message)
        if ($reason.Length -gt 500) { $reason = $reason.Substring(0, 500) }
        Write-AgentLog 'ERROR' ("rotation {0} failed: {1}" -f $rotationId, $reason)
        try {
            Invoke-Vault 'POST' "/api/escrow/rotations/$rotationId/result" @{ outcome = 'failed'; reason = $reason } $Credential | Out-Null
        } catch {
            Write-AgentLog 'ERROR' ("rotation {0}: the failure could not be reported: {1}" -f $rotationId, $_.Exception.Message)
        }
    }
}

function Invoke-CheckIn([string] $Credential) {
    $result = Invoke-Vault 'POST' '/api/escrow/check-in' @{ agentVersion = $AgentVersion; device = (Get-DeviceFacts) } $Credential
    foreach ($action in @($result.actions)) {
        if ($action.type -eq 'rotate-recovery-password') {
            Invoke-Rotation $Credential $action
        } else {
            Write-AgentLog 'WARN' ("unknown action type {0}; ignored" -f $action.type)
        }
    }
}

function Send-BitLockerEvents([string] $Credential, $State) {
    $filter = @{ LogName = $EventLogName; Id = $ForwardedEventIds }
    if ($State.lastEventTime) { $filter.StartTime = ([datetime]$State.lastEventTime).AddSeconds(-1) }
    $events = @()
    try {
        $events = @(Get-WinEvent -FilterHashtable $filter -ErrorAction Stop |
                Where-Object { $_.RecordId -gt [long]$State.lastEventRecordId } |
                Sort-Object RecordId)
    } catch [System.Exception] {
        # "No events were found" is not an error for us.
        if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { throw }
    }
    for ($i = 0; $i -lt $events.Count; $i += $MaxEventsPerBatch) {
        $batch = $events[$i..([Math]::Min($i + $MaxEventsPerBatch, $events.Count) - 1)]
        $payload = @($batch | ForEach-Object {
                $message = Protect-LogText ([string]$_.Message)
                if ($message.Length -gt 4000) { $message = $message.Substring(0, 4000) }
                $entry = [ordered]@{
                    recordId   = [long]$_.RecordId
                    eventId    = [int]$_.Id
                    occurredAt = $_.TimeCreated.ToUniversalTime().ToString('o')
                    level      = [string]$_.LevelDisplayName
                }
                if ($message) { $entry.message = $message }
                $entry
            })
        $result = Invoke-Vault 'POST' '/api/escrow/events' @{ events = $payload } $Credential
        $last = $batch[-1]
        $State.lastEventRecordId = [long]$last.RecordId
        $State.lastEventTime = $last.TimeCreated.ToUniversalTime().ToString('o')
        Save-AgentState $State
        Write-AgentLog 'INFO' ("forwarded {0} events ({1} new)" -f $batch.Count, $result.accepted)
    }
}

# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
Assert-ServerUrl
Initialize-StateDirectory
$state = Read-AgentState
try {
    $credential = Read-DeviceCredential
    if (-not $credential) {
        Invoke-Enrollment $state
        $credential = Read-DeviceCredential
    }
    Invoke-Escrow $credential
    Invoke-CheckIn $credential
    if (-not $SkipEvents) { Send-BitLockerEvents $credential $state }
    exit 0
} catch {
    Write-AgentLog 'ERROR' ([string]$_.Exception.Message)
    exit 1
}
