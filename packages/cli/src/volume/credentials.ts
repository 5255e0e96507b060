/** The credential options every `bdevault volume` command that unlocks shares, turned into one Credential. */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseFvekFile, parseKeyIdPrefix, type Credential } from '@bdevault/bde';
import { readSecret } from '../lib/read-secret.js';
import { CliError } from '../run-cli.js';
import { toCliError } from './errors.js';

/** What commander gives for the credential options (`true` = flag given without a value: prompt). */
export interface CredentialFlags {
  recoveryPassword?: string | true;
  keyId?: string;
  password?: string | true;
  startupKey?: string;
  clearKey?: boolean;
  certificate?: string;
  certificatePassword?: string | true;
  fvekFile?: string;
}

/** Bounds what a credential file read may allocate: real ones are a few KiB at most. */
const MAX_CREDENTIAL_FILE = 1024 * 1024;

/** Adds the shared credential options; the help says how to keep secrets off the command line. */
export function addCredentialOptions(command: Command): Command {
  return command
    .option(
      '--recovery-password [value]',
      'the 48-digit recovery password; without a value (or "-") it is prompted without echo, or read from stdin',
    )
    .option(
      '--key-id <id>',
      'with --recovery-password: the protector to try first (GUID or its first 8 digits)',
    )
    .option(
      '--password [value]',
      'the user password; without a value (or "-") it is prompted or read from stdin',
    )
    .option('--startup-key <file>', 'a startup key (.BEK) file')
    .option('--clear-key', 'use the clear key of a volume whose protection is suspended')
    .option(
      '--certificate <file>',
      'RSA private key (.pfx/.p12, PEM or DER) of a public-key / Data Recovery Agent protector',
    )
    .option(
      '--certificate-password [value]',
      'password of the --certificate file (prompted without a value or with "-")',
    )
    .option('--fvek-file <file>', "the FVEK: dislocker's 66-byte file, or the raw 16/32/64-byte key");
}

/** Reads a small credential file, with a message that names the file but never its content. */
async function readCredentialFile(path: string, what: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const reason = (err as { code?: string }).code ?? 'error';
    throw new CliError(`Cannot read the ${what} ${path} (${reason})`);
  }
  if (bytes.length > MAX_CREDENTIAL_FILE) throw new CliError(`The ${what} ${path} is too large`);
  return bytes;
}

/**
 * A value given on the command line ends up in `ps` output and shell history, so say so; `true`
 * or "-" means ask (no echo on a terminal, first line of stdin otherwise).
 */
async function secretValue(value: string | true, flag: string, prompt: string): Promise<string> {
  if (value === true || value === '-') return readSecret(prompt);
  process.stderr.write(
    `bdevault: warning: a value given with ${flag} is visible to other users in the process list and ` +
      `in shell history; give ${flag} without a value to be prompted instead\n`,
  );
  return value;
}

const EXCLUSIVE: readonly (keyof CredentialFlags)[] = [
  'recoveryPassword',
  'password',
  'startupKey',
  'clearKey',
  'certificate',
  'fvekFile',
];

const FLAG_NAMES: Readonly<Record<string, string>> = {
  recoveryPassword: '--recovery-password',
  password: '--password',
  startupKey: '--startup-key',
  clearKey: '--clear-key',
  certificate: '--certificate',
  fvekFile: '--fvek-file',
};

/** Checks that exactly one credential was given, before anything is read or prompted. */
export function checkCredentialFlags(flags: CredentialFlags): void {
  const given = EXCLUSIVE.filter((k) => flags[k] !== undefined && flags[k] !== false);
  if (given.length === 0) {
    throw new CliError(
      'Give one credential: --recovery-password, --password, --startup-key, --clear-key, --certificate or --fvek-file',
    );
  }
  if (given.length > 1) {
    throw new CliError(`Give exactly one credential, not ${given.map((k) => FLAG_NAMES[k]).join(' and ')}`);
  }
  if (flags.keyId !== undefined && given[0] !== 'recoveryPassword') {
    throw new CliError('--key-id goes with --recovery-password');
  }
  if (flags.certificatePassword !== undefined && given[0] !== 'certificate') {
    throw new CliError('--certificate-password goes with --certificate');
  }
  // Fail on a malformed key id now rather than after prompting for the password.
  if (flags.keyId !== undefined) {
    try {
      parseKeyIdPrefix(flags.keyId);
    } catch (err) {
      throw toCliError(err);
    }
  }
}

/**
 * Turns the flags into the library's credential, reading files and prompting as needed. Called
 * after the volume is opened, so a file that is not BitLocker fails before anyone types a secret.
 */
export async function resolveCredential(flags: CredentialFlags, volumeMethod: number): Promise<Credential> {
  checkCredentialFlags(flags);
  if (flags.recoveryPassword !== undefined) {
    const recoveryPassword = await secretValue(
      flags.recoveryPassword,
      '--recovery-password',
      'Recovery password: ',
    );
    return { kind: 'recovery-password', recoveryPassword, ...(flags.keyId ? { keyId: flags.keyId } : {}) };
  }
  if (flags.password !== undefined) {
    return { kind: 'password', password: await secretValue(flags.password, '--password', 'Password: ') };
  }
  if (flags.startupKey !== undefined) {
    return { kind: 'startup-key', bek: await readCredentialFile(flags.startupKey, 'startup key file') };
  }
  if (flags.clearKey) return { kind: 'clear-key' };
  if (flags.certificate !== undefined) {
    const bytes = await readCredentialFile(flags.certificate, 'certificate key file');
    // PEM goes in as text so the library can tell PKCS#8 from PKCS#1 by its header.
    const privateKey = bytes.subarray(0, 64).toString('latin1').includes('-----BEGIN')
      ? bytes.toString('utf8')
      : bytes;
    const passphrase =
      flags.certificatePassword === undefined
        ? undefined
        : await secretValue(
            flags.certificatePassword,
            '--certificate-password',
            'Certificate key passphrase: ',
          );
    return { kind: 'certificate', privateKey, ...(passphrase !== undefined ? { passphrase } : {}) };
  }
  const bytes = await readCredentialFile(flags.fvekFile!, 'FVEK file');
  return { kind: 'fvek', fvek: fvekBytes(bytes, volumeMethod) };
}

function fvekBytes(bytes: Uint8Array, volumeMethod: number): Uint8Array {
  if (bytes.length === 66) {
    const { method, fvek } = parseFvekFile(bytes);
    // The method is not secret; naming both beats the generic unlock failure here.
    if (method !== volumeMethod) {
      throw new CliError(
        `The FVEK file is for method 0x${method.toString(16)} but the volume uses 0x${volumeMethod.toString(16)}`,
      );
    }
    return fvek;
  }
  if (bytes.length === 16 || bytes.length === 32 || bytes.length === 64) return bytes;
  throw new CliError(
    "An FVEK file is dislocker's 66-byte format or a raw key of 16, 32 or 64 bytes; this one is " +
      `${bytes.length} bytes`,
  );
}
