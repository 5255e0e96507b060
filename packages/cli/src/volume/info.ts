/** `bdevault volume info`: what `manage-bde -status` and `-protectors -get` print, for an image or device. */
import type { Command } from 'commander';
import type { ProtectorInfo, VolumeInfo } from '@bdevault/bde';
import { withVolume } from './open.js';

const CERT_TYPES: Readonly<Record<number, string>> = {
  1: 'Data Recovery Agent (Certificate Based)',
  2: 'Smart Card (Certificate Based)',
};

/** The heading manage-bde uses for a protector (a public key says which kind of certificate). */
export function protectorHeading(p: ProtectorInfo): string {
  if (p.type === 'public-key' && p.certificate) return CERT_TYPES[p.certificate.certType] ?? p.typeName;
  return p.typeName;
}

/** One protector in the JSON output (stable: documented in docs/offline-toolkit.md). */
export function protectorJson(p: ProtectorInfo) {
  return {
    id: p.id,
    type: p.type,
    typeName: p.typeName,
    heading: protectorHeading(p),
    protection: p.protection,
    modified: p.modified?.toISOString() ?? null,
    entryVersion: p.entryVersion,
    label: p.label,
    ...(p.certificate ? { certificate: { ...p.certificate } } : {}),
    ...(p.type === 'startup-key' ? { externalKeyFileName: `${p.id}.BEK` } : {}),
  };
}

function percentageEncrypted(info: VolumeInfo): number {
  if (info.currentState === 1 && info.nextState === 1) return 0;
  if (info.volumeSize === 0) return 0;
  return Math.min(100, Math.round((info.encryptedSize / info.volumeSize) * 1000) / 10);
}

const suspended = (info: VolumeInfo) => info.protectionStatus !== 'On';

/** The JSON shape of `volume info --json` (version 1). */
export function infoJson(path: string, info: VolumeInfo) {
  return {
    formatVersion: 1,
    source: path,
    kind: info.kind,
    kindName: info.kindName,
    bitlockerVersion: info.kind === 'vista' ? '1.0' : '2.0',
    volumeGuid: info.volumeGuid,
    size: info.volumeSize,
    encryptedSize: info.encryptedSize,
    percentageEncrypted: percentageEncrypted(info),
    sectorSize: info.sectorSize,
    encryptionMethod: { code: info.method, name: info.methodName },
    conversionStatus: info.conversionStatus,
    conversionState: { current: info.currentState, next: info.nextState },
    encryptOnWrite: info.encryptOnWrite,
    protectionStatus: suspended(info) ? 'Off' : 'On',
    protectionSuspended: suspended(info),
    lockStatus: 'Locked',
    createdAt: info.createdAt?.toISOString() ?? null,
    description: info.description,
    metadata: {
      offsets: info.metadataOffsets,
      blockUsed: info.metadataBlockUsed,
      volumeHeader: info.volumeHeader,
    },
    protectors: info.protectors.map(protectorJson),
  };
}

const field = (name: string, value: string) => `    ${`${name}:`.padEnd(22)}${value}`.trimEnd();

/** Text in manage-bde's layout: `-status` first, then `-protectors -get`. */
export function infoText(path: string, info: VolumeInfo): string {
  const gb = (info.volumeSize / 1024 ** 3).toFixed(2);
  const lines = [
    `Volume ${path}${info.description ? ` [${info.description}]` : ''}`,
    `[${info.kindName}]`,
    '',
    field('Size', `${gb} GB (${info.volumeSize} bytes)`),
    field('BitLocker Version', info.kind === 'vista' ? '1.0' : '2.0'),
    field('Conversion Status', info.conversionStatus),
    field('Percentage Encrypted', `${percentageEncrypted(info).toFixed(1)}%`),
    field('Encryption Method', info.methodName),
    field('Protection Status', suspended(info) ? 'Protection Off (suspended: clear key)' : 'Protection On'),
    // Read offline, the volume is locked and its identification field is not readable.
    field('Lock Status', 'Locked'),
    field('Identification Field', 'Unknown'),
    field('Key Protectors', info.protectors.length === 0 ? 'None Found' : ''),
    ...info.protectors.map((p) => `        ${protectorHeading(p)}`),
    '',
    field('Volume GUID', `{${info.volumeGuid}}`),
    field('Sector Size', `${info.sectorSize} bytes`),
    field('Created', info.createdAt?.toISOString() ?? 'Unknown'),
    field('Metadata Blocks', `${info.metadataOffsets.join(', ')} (using copy ${info.metadataBlockUsed + 1})`),
    '',
    'All Key Protectors',
    '',
  ];
  for (const p of info.protectors) {
    lines.push(`    ${protectorHeading(p)}:`, `      ID: {${p.id}}`);
    if (p.certificate) {
      lines.push('      Certificate Thumbprint:', `        ${p.certificate.thumbprint}`);
    }
    if (p.type === 'startup-key') lines.push('      External Key File Name:', `        ${p.id}.BEK`);
    if (p.type === 'clear-key')
      lines.push('      (protection is suspended: anyone holding the disk can decrypt it)');
    lines.push('');
  }
  return lines.join('\n');
}

export function registerInfo(volume: Command): void {
  volume
    .command('info')
    .summary('status and key protectors (manage-bde -status, -protectors -get)')
    .description(
      'Show status and key protectors of a BitLocker volume (manage-bde -status / -protectors -get)',
    )
    .argument('<image>', 'BitLocker image file or block device')
    .option('--json', 'print JSON (a stable shape, see docs/offline-toolkit.md)')
    .action(async (image: string, flags: { json?: boolean }) => {
      const info = await withVolume(image, async (volume) => volume.info);
      process.stdout.write(
        flags.json ? `${JSON.stringify(infoJson(image, info), null, 2)}\n` : `${infoText(image, info)}\n`,
      );
    });
}
