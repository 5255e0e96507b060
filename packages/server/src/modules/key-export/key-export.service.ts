/** Break-glass export of an organization's recovery keys, encrypted to an age recipient and audited. */
import type { Db } from '../../db/database.js';
import type { Envelope } from '../../lib/envelope.js';
import type { RandomSource } from '../../lib/random.js';
import type { AuditActorType, AuditWriter } from '../audit/audit.service.js';
import { IMPORT_COLUMNS } from '../directory-import/file-import.js';
import type { RecoveryKeysRepo } from '../recovery-keys/recovery-keys.repo.js';
import { AgeEncryptor, parseAgeRecipient } from './age.js';

const PAGE = 500;
export const EXPORT_COLUMNS = [...IMPORT_COLUMNS, 'status'] as const;

function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export type KeyExportService = ReturnType<typeof createKeyExportService>;

export function createKeyExportService(deps: {
  db: Db;
  random: RandomSource;
  envelope: Envelope;
  auditWriter: AuditWriter;
  recoveryKeysRepo: RecoveryKeysRepo;
}) {
  const { db, random, envelope, auditWriter, recoveryKeysRepo } = deps;
  return {
    /**
     * Every key of the organization as CSV (the columns `import csv` reads, plus status), encrypted
     * to the recipient. The audit row is written first in the same transaction: if it fails, nothing
     * is decrypted. Plaintext exists only in memory, one 64 KiB chunk at a time.
     */
    async exportRecoveryKeys(request: {
      organizationId: string;
      recipient: string;
      actor: { type: AuditActorType; id: string | null };
      requestId?: string;
    }): Promise<{ data: Buffer; count: number; auditEntryId: string }> {
      const { organizationId } = request;
      parseAgeRecipient(request.recipient); // refuse a bad recipient before anything is audited
      return db.transaction().execute(async (trx) => {
        const count = await recoveryKeysRepo.countOfOrganization(organizationId, trx);
        const audit = await auditWriter.append(
          {
            organizationId,
            actor: request.actor,
            action: 'recovery-keys.exported',
            target: { type: 'organization', id: organizationId },
            outcome: 'success',
            details: { count, format: 'age', recipient: request.recipient.trim().toLowerCase() },
            ...(request.requestId === undefined ? {} : { requestId: request.requestId }),
          },
          trx,
        );
        const encryptor = new AgeEncryptor([request.recipient.trim().toLowerCase()], random);
        const out: Buffer[] = [encryptor.header, encryptor.update(`${EXPORT_COLUMNS.join(',')}\n`)];
        let after = '';
        for (;;) {
          const rows = await recoveryKeysRepo.exportPage(organizationId, after, PAGE, trx);
          let text = '';
          for (const row of rows) {
            const password = envelope.open(
              { organizationId, recordId: row.id, purpose: 'recovery-password' },
              {
                ciphertext: row.password_ciphertext,
                wrappedKey: row.password_wrapped_key,
                kekId: row.password_kek_id,
              },
            );
            text += `${[row.device_name, row.key_id, password, row.volume_guid, row.volume_type, row.created_at, row.status].map(csvField).join(',')}\n`;
          }
          out.push(encryptor.update(text));
          if (rows.length < PAGE) break;
          after = rows[rows.length - 1]!.id;
        }
        out.push(encryptor.final());
        return { data: Buffer.concat(out), count, auditEntryId: audit.id };
      });
    },
  };
}
