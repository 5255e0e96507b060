/** CSV and JSON recovery-key files: bounded parsing and per-row validation into import items. */
import { checkRecoveryPassword, describeProblems, parseKeyId } from '@bdevault/bde';
import { AppError } from '../../lib/errors.js';
import type { ImportItem, RowReport, VolumeType } from './directory-import.service.js';

/** Most rows one file may have; bigger inventories are split or imported from AD. */
export const MAX_IMPORT_ROWS = 5000;
/** Most characters of one file (the API's body limit is 1 MiB as well). */
export const MAX_IMPORT_CHARS = 900_000;

/** The columns, in the order `bdevault export` writes them. */
export const IMPORT_COLUMNS = [
  'deviceName',
  'keyId',
  'recoveryPassword',
  'volumeGuid',
  'volumeType',
  'createdAt',
] as const;
type Column = (typeof IMPORT_COLUMNS)[number];

// Header spellings accepted: case, spaces, dashes and underscores do not matter.
const HEADER_ALIASES: Record<string, Column> = {
  devicename: 'deviceName',
  device: 'deviceName',
  computername: 'deviceName',
  keyid: 'keyId',
  recoverykeyid: 'keyId',
  recoverypassword: 'recoveryPassword',
  password: 'recoveryPassword',
  volumeguid: 'volumeGuid',
  volumeid: 'volumeGuid',
  volumetype: 'volumeType',
  created: 'createdAt',
  createdat: 'createdAt',
  createddatetime: 'createdAt',
};

export type RawRow = Partial<Record<Column, unknown>> & { row: number };

/** RFC 4180 records (quoted fields, doubled quotes, CRLF or LF); throws on an unterminated quote. */
export function parseCsvRecords(text: string, maxRecords: number): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0; // byte-order mark from spreadsheet exports
  const endRecord = () => {
    record.push(field);
    field = '';
    if (!(record.length === 1 && record[0] === '')) records.push(record);
    record = [];
    if (records.length > maxRecords) {
      throw new AppError('PAYLOAD_TOO_LARGE', `The file has more than ${maxRecords - 1} rows`);
    }
  };
  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += ch;
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\n') endRecord();
    else if (ch === '\r') {
      if (text[i + 1] !== '\n') endRecord();
    } else field += ch;
  }
  if (quoted) throw new AppError('VALIDATION_FAILED', 'The CSV file ends inside a quoted field');
  if (field !== '' || record.length > 0) endRecord();
  return records;
}

/** Rows of a CSV file keyed by column; unknown columns are ignored (they are listed). */
export function rowsFromCsv(text: string): { rows: RawRow[]; ignoredColumns: string[] } {
  if (text.length > MAX_IMPORT_CHARS) {
    throw new AppError('PAYLOAD_TOO_LARGE', `The file is larger than ${MAX_IMPORT_CHARS} characters`);
  }
  const [header, ...records] = parseCsvRecords(text, MAX_IMPORT_ROWS + 1);
  if (!header) throw new AppError('VALIDATION_FAILED', 'The CSV file is empty');
  const columns = header.map((h) => HEADER_ALIASES[h.toLowerCase().replace(/[\s_-]/g, '')]);
  for (const required of ['deviceName', 'keyId', 'recoveryPassword'] as const) {
    if (!columns.includes(required)) {
      throw new AppError('VALIDATION_FAILED', `The CSV header has no ${required} column`);
    }
  }
  const ignoredColumns = header.filter((_, i) => columns[i] === undefined).map((h) => h.slice(0, 64));
  const rows = records.map((fields, index) => {
    const row: RawRow = { row: index + 2 }; // the header is row 1, as in a spreadsheet
    columns.forEach((column, i) => {
      if (column !== undefined && fields[i] !== undefined && fields[i] !== '') row[column] = fields[i];
    });
    return row;
  });
  return { rows, ignoredColumns };
}

/** Rows of a JSON array of objects with the column names as keys (row = position, from 1). */
export function rowsFromJson(value: unknown): RawRow[] {
  if (!Array.isArray(value))
    throw new AppError('VALIDATION_FAILED', 'The JSON file must be an array of rows');
  if (value.length > MAX_IMPORT_ROWS) {
    throw new AppError('PAYLOAD_TOO_LARGE', `The file has more than ${MAX_IMPORT_ROWS} rows`);
  }
  return value.map((entry, index) => {
    const row: RawRow = { row: index + 1 };
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      for (const column of IMPORT_COLUMNS) {
        const v = (entry as Record<string, unknown>)[column];
        if (v !== undefined && v !== null && v !== '') row[column] = v;
      }
    }
    return row;
  });
}

const VOLUME_TYPES: Record<string, VolumeType> = {
  os: 'os',
  '1': 'os',
  operatingsystem: 'os',
  operatingsystemvolume: 'os',
  fixed: 'fixed',
  '2': 'fixed',
  fixeddata: 'fixed',
  fixeddatavolume: 'fixed',
  removable: 'removable',
  '3': 'removable',
  removabledata: 'removable',
  removabledatavolume: 'removable',
};

const text = (v: unknown, max: number): string | undefined =>
  typeof v === 'string' || typeof v === 'number'
    ? String(v)
        .trim()
        .slice(0, max + 1)
    : undefined;

/**
 * Turns raw rows into import items, or into rejected rows with a reason. A password is reported by
 * group position and kind only; the checker's suggestions are dropped since they would reveal digits.
 */
export function itemsFromRows(rows: RawRow[], now: string): { items: ImportItem[]; rejected: RowReport[] } {
  const items: ImportItem[] = [];
  const rejected: RowReport[] = [];
  const seen = new Set<string>();
  for (const raw of rows) {
    const deviceName = text(raw.deviceName, 255);
    const keyText = text(raw.keyId, 40);
    const reject = (reason: string, keyId?: string) =>
      rejected.push({
        row: raw.row,
        outcome: 'invalid',
        ...(deviceName ? { deviceName: deviceName.slice(0, 255) } : {}),
        ...(keyId ? { keyId } : {}),
        reason,
      });
    let keyId: string;
    try {
      keyId = parseKeyId(keyText ?? '');
    } catch {
      reject('keyId is missing or not a GUID');
      continue;
    }
    if (!deviceName || deviceName.length > 255) {
      reject('deviceName is missing or longer than 255 characters', keyId);
      continue;
    }
    if (seen.has(keyId)) {
      reject('this key id appears earlier in the file', keyId);
      continue;
    }
    seen.add(keyId);
    let volumeGuid: string | undefined;
    if (raw.volumeGuid !== undefined) {
      try {
        volumeGuid = parseKeyId(text(raw.volumeGuid, 40) ?? '');
      } catch {
        reject('volumeGuid is not a GUID', keyId);
        continue;
      }
    }
    let volumeType: VolumeType | undefined;
    if (raw.volumeType !== undefined) {
      volumeType = VOLUME_TYPES[(text(raw.volumeType, 40) ?? '').toLowerCase().replace(/[\s_-]/g, '')];
      if (!volumeType) {
        reject('volumeType must be os, fixed or removable (or 1, 2, 3)', keyId);
        continue;
      }
    }
    let createdAt = now;
    if (raw.createdAt !== undefined) {
      const t = Date.parse(text(raw.createdAt, 40) ?? '');
      if (Number.isNaN(t)) {
        reject('createdAt is not a date', keyId);
        continue;
      }
      createdAt = new Date(t).toISOString();
    }
    const passwordText = text(raw.recoveryPassword, 128);
    const check = passwordText === undefined ? undefined : checkRecoveryPassword(passwordText);
    items.push({
      row: raw.row,
      device: { name: deviceName },
      volumeGuid,
      volumeType,
      keyId,
      createdAt,
      password:
        check?.valid && check.password
          ? { state: 'valid', value: check.password }
          : {
              state: 'invalid',
              reason: check ? describeProblems(check.problems) : 'recoveryPassword is missing',
            },
    });
  }
  return { items, rejected };
}
