/** Worker-thread entry of the decryption pool: decrypts transferred batches in place and sends them back. */
import { parentPort } from 'node:worker_threads';
import { type SectorKeys, decryptSectorsInPlace } from '../crypto/sector-cipher.js';
import { isBdeError } from '../errors.js';

/** One batch: the ciphertext buffer arrives transferred and goes back, decrypted, the same way. */
export interface DecryptJob {
  id: number;
  keys: SectorKeys;
  data: Uint8Array;
  firstOffset: number;
}

export type DecryptReply =
  | { id: number; data: Uint8Array }
  | { id: number; error: { code: string | undefined; message: string } }
  | { ready: true };

const port = parentPort;
if (port) {
  port.on('message', (job: DecryptJob) => {
    let reply: DecryptReply;
    try {
      reply = { id: job.id, data: decryptSectorsInPlace(job.keys, job.data, job.firstOffset) };
    } catch (e) {
      const code = isBdeError(e) ? e.code : undefined;
      reply = { id: job.id, error: { code, message: e instanceof Error ? e.message : String(e) } };
    }
    port.postMessage(reply, 'data' in reply ? [reply.data.buffer as ArrayBuffer] : []);
  });
  // Sent once this module and its imports have loaded: the pool's proof that the worker can work.
  port.postMessage({ ready: true } satisfies DecryptReply);
}
