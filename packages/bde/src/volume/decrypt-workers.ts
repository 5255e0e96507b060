/**
 * Whole-volume decryption on worker threads: a small pool that decrypts batches of sectors in
 * parallel (buffers transferred, never copied), and an in-order plaintext stream that does the I/O
 * on the calling thread while several chunks are in flight.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { METHOD, type SectorKeys, decryptSectorsInPlace } from '../crypto/sector-cipher.js';
import { BdeError, type BdeErrorCode } from '../errors.js';
import type { DecryptJob, DecryptReply } from './decrypt-worker.js';
import { PlaintextReader, checkDecryptable } from './plaintext-view.js';
import type { UnlockedVolume } from './unlock.js';

export interface DecryptPoolOptions {
  /** Worker threads; 0 decrypts on the calling thread. Default: `defaultWorkerCount()`. */
  workers?: number;
  /** The worker entry; default `decrypt-worker.js` beside this module (`.ts` when run from sources). */
  workerUrl?: URL;
  /** How long a worker may take to load before the pool gives up on workers (ms, default 20 s). */
  startTimeoutMs?: number;
}

/** Decrypts batches of whole sectors, on worker threads or, as a fallback, on the calling thread. */
export interface DecryptPool {
  /** 'workers' when threads run the batches; 'in-thread' when asked for 0 or they could not start. */
  readonly mode: 'workers' | 'in-thread';
  /** Running worker threads (0 in-thread). */
  readonly size: number;
  /** Why the pool runs in-thread although workers were asked for (the worker's start error). */
  readonly fallbackReason: string | undefined;
  /**
   * Decrypts `data` (whole sectors; IV position of the first: `firstOffset`). The buffer is handed
   * over: it may come back decrypted in place, or be detached. A view that does not span its whole
   * ArrayBuffer is copied first.
   */
  decrypt(keys: SectorKeys, data: Uint8Array, firstOffset: number): Promise<Uint8Array>;
  /** Stops the threads; later `decrypt` calls run in-thread. */
  close(): Promise<void>;
}

/**
 * min(cores, 4) threads with at least 2 cores, else 0 (one core gains nothing from a thread and
 * pays its start-up). The calling thread mostly waits on I/O, so it needs no core of its own:
 * on a 2-core machine 2 workers decrypted XTS 1.6x and Elephant 1.8x faster than in-thread
 * (bench/RESULTS.md). Beyond 4, the calling thread's I/O becomes the bottleneck.
 */
export function defaultWorkerCount(): number {
  const cores = availableParallelism();
  return cores > 1 ? Math.min(cores, 4) : 0;
}

/** How to start a worker: a module file, or (from TypeScript sources) a bootstrap script. */
type WorkerEntry = { url: URL } | { script: string };

/**
 * Where the worker entry is. From the built `dist/` it is the compiled `decrypt-worker.js` next
 * to this file. From TypeScript sources (vitest, tsx) the thread needs a TypeScript loader, and
 * `--import tsx` does not help: on Node 20 tsx registers its ESM hooks on the main thread only.
 * So a small CommonJS bootstrap loads the `.ts` entry through tsx's require API (tsx is a dev
 * dependency of the workspace; the entry and its imports have no top-level await or
 * import.meta, so CommonJS is fine). Without tsx the worker fails to start and the pool falls
 * back to in-thread.
 */
function defaultEntry(): WorkerEntry {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return { url: new URL('./decrypt-worker.js', here) };
  const entry = fileURLToPath(new URL('./decrypt-worker.ts', here));
  let api: string;
  try {
    api = createRequire(here).resolve('tsx/cjs/api');
  } catch {
    return { url: new URL('./decrypt-worker.ts', here) };
  }
  return {
    script: `require(${JSON.stringify(api)}).require(${JSON.stringify(entry)}, ${JSON.stringify(entry)});`,
  };
}

interface Pending {
  resolve: (data: Uint8Array) => void;
  reject: (err: Error) => void;
  thread: Thread;
}

interface Thread {
  worker: Worker;
  busy: number;
}

/** A buffer that can be transferred: the view spans its whole (non-shared) ArrayBuffer. */
function transferable(data: Uint8Array): Uint8Array {
  const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
  return whole && data.buffer instanceof ArrayBuffer ? data : Uint8Array.from(data);
}

/** Starts one worker and resolves once its module has loaded (its `ready` message). */
function startWorker(entry: WorkerEntry, timeoutMs: number): Promise<Worker> {
  return new Promise((resolve, reject) => {
    const worker = 'url' in entry ? new Worker(entry.url) : new Worker(entry.script, { eval: true });
    const done = (): void => {
      clearTimeout(timer);
      worker.off('error', fail);
      worker.off('exit', onExit);
      worker.off('message', onMessage);
    };
    const fail = (err: Error): void => {
      done();
      void worker.terminate();
      reject(err);
    };
    const onExit = (code: number): void => fail(new Error(`worker exited with code ${code} while starting`));
    const onMessage = (msg: DecryptReply): void => {
      if (!('ready' in msg)) return fail(new Error('unexpected first message from worker'));
      done();
      resolve(worker);
    };
    const timer = setTimeout(() => fail(new Error(`worker did not start within ${timeoutMs} ms`)), timeoutMs);
    worker.on('error', fail);
    worker.on('exit', onExit);
    worker.on('message', onMessage);
  });
}

class WorkerPool implements DecryptPool {
  readonly #threads: Thread[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly fallbackReason: string | undefined;

  constructor(workers: Worker[], fallbackReason: string | undefined) {
    this.fallbackReason = fallbackReason;
    for (const worker of workers) {
      const thread: Thread = { worker, busy: 0 };
      // Idle workers must not keep the process alive; a worker with jobs in flight is ref'd again.
      worker.unref();
      worker.on('message', (msg: DecryptReply) => this.#onReply(msg));
      worker.on('error', (err) => this.#onDeath(thread, err));
      worker.on('exit', (code) => this.#onDeath(thread, new Error(`worker exited with code ${code}`)));
      this.#threads.push(thread);
    }
  }

  get mode(): 'workers' | 'in-thread' {
    return this.#threads.length > 0 ? 'workers' : 'in-thread';
  }

  get size(): number {
    return this.#threads.length;
  }

  decrypt(keys: SectorKeys, data: Uint8Array, firstOffset: number): Promise<Uint8Array> {
    if (this.#threads.length === 0) {
      try {
        return Promise.resolve(decryptSectorsInPlace(keys, transferable(data), firstOffset));
      } catch (e) {
        return Promise.reject(e instanceof Error ? e : new Error(String(e)));
      }
    }
    let thread = this.#threads[0]!;
    for (const t of this.#threads) if (t.busy < thread.busy) thread = t;
    const job: DecryptJob = { id: this.#nextId++, keys, data: transferable(data), firstOffset };
    if (thread.busy++ === 0) thread.worker.ref();
    return new Promise((resolve, reject) => {
      this.#pending.set(job.id, { resolve, reject, thread });
      thread.worker.postMessage(job, [job.data.buffer as ArrayBuffer]);
    });
  }

  #onReply(msg: DecryptReply): void {
    if ('ready' in msg) return;
    const job = this.#pending.get(msg.id);
    if (!job) return;
    this.#pending.delete(msg.id);
    if (--job.thread.busy === 0) job.thread.worker.unref();
    if ('data' in msg) job.resolve(msg.data);
    else job.reject(new BdeError((msg.error.code ?? 'ERR_BDE_IO') as BdeErrorCode, msg.error.message));
  }

  /** A crashed worker fails its batches (their buffers went with it); the others carry on. */
  #onDeath(thread: Thread, err: Error): void {
    const i = this.#threads.indexOf(thread);
    if (i < 0) return;
    this.#threads.splice(i, 1);
    for (const [id, job] of this.#pending) {
      if (job.thread !== thread) continue;
      this.#pending.delete(id);
      job.reject(new BdeError('ERR_BDE_IO', `A decryption worker failed: ${err.message}`, { cause: err }));
    }
  }

  async close(): Promise<void> {
    const threads = this.#threads.splice(0);
    for (const [id, job] of this.#pending) {
      this.#pending.delete(id);
      job.reject(new BdeError('ERR_BDE_IO', 'The decryption pool was closed'));
    }
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}

/**
 * Starts a pool. Never throws for a worker that cannot start: the pool then decrypts in-thread
 * and says why in `fallbackReason` (e.g. sources run without a TypeScript loader).
 *
 * @example
 * const pool = await createDecryptPool({ workers: 2 });
 * try { for (const v of volumes) for await (const c of decryptVolumeStream(v, { pool })) out.write(c); }
 * finally { await pool.close(); }
 */
export async function createDecryptPool(options: DecryptPoolOptions = {}): Promise<DecryptPool> {
  const count = options.workers ?? defaultWorkerCount();
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'workers must be a non-negative integer');
  }
  if (count === 0) return new WorkerPool([], undefined);
  const entry = options.workerUrl ? { url: options.workerUrl } : defaultEntry();
  const timeout = options.startTimeoutMs ?? 20_000;
  const started = await Promise.allSettled(Array.from({ length: count }, () => startWorker(entry, timeout)));
  const workers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    // All or nothing: a pool that lost some threads at start would only hide the problem.
    await Promise.all(workers.map((w) => w.terminate()));
    const reason = failure.reason instanceof Error ? failure.reason.message : String(failure.reason);
    return new WorkerPool([], reason);
  }
  return new WorkerPool(workers, undefined);
}

export interface DecryptStreamOptions {
  /** First plaintext byte (default 0). */
  start?: number;
  /** End of the range, exclusive (default: the volume size). */
  end?: number;
  /** Bytes per yielded chunk and per batch sent to a worker (default 4 MiB). */
  chunkSize?: number;
  /**
   * Worker threads for this stream (0 = calling thread). Default: `defaultWorkerCount()` for XTS
   * and Elephant ranges of at least 256 MiB, else 0: starting threads costs ~30 ms (~200 ms from
   * TypeScript sources), and plain AES-CBC runs at ~3.4 GB/s in-thread, faster than with the
   * copies and messages a pool adds (measured: ~2 GB/s with 2 workers). Ignored when `pool` is given.
   */
  workers?: number;
  /** A pool to use (and not close), e.g. one shared by a server across volumes. */
  pool?: DecryptPool;
}

/** Ranges below this decrypt in-thread by default: a thread's start-up would cost more than it saves. */
const WORKER_THRESHOLD = 256 * 1024 * 1024;

/** Whether a method's decryption is CPU-heavy enough for threads to pay (not plain AES-CBC). */
function worthThreads(method: number): boolean {
  return method !== METHOD.AES_128_CBC && method !== METHOD.AES_256_CBC;
}

/**
 * The plaintext of an unlocked volume (§3.9 view, as `plaintextChunks`), in order, in chunks of
 * `chunkSize`, decrypted on worker threads. Chunks are read and decrypted ahead (2 per thread)
 * while the consumer handles the current one, so memory stays at a few chunks per thread.
 *
 * @example
 * for await (const chunk of decryptVolumeStream(unlocked, { workers: 2 })) hash.update(chunk);
 */
export async function* decryptVolumeStream(
  unlocked: UnlockedVolume,
  options: DecryptStreamOptions = {},
): AsyncGenerator<Uint8Array> {
  const volume = unlocked.volume;
  checkDecryptable(volume);
  const size = volume.info.volumeSize;
  const start = options.start ?? 0;
  const end = options.end ?? size;
  const chunkSize = options.chunkSize ?? 4 * 1024 * 1024;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'chunkSize must be a positive integer');
  }
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end > size || start > end) {
    throw new BdeError('ERR_BDE_INVALID_ARGUMENT', 'Invalid range');
  }
  const keys: SectorKeys = {
    method: unlocked.method,
    fvek: unlocked.fvek,
    sectorSize: volume.info.sectorSize,
  };
  const reader = new PlaintextReader(volume, keys);
  const big = end - start >= WORKER_THRESHOLD && worthThreads(keys.method);
  const workers = options.workers ?? (big ? defaultWorkerCount() : 0);
  const pool = options.pool ?? (await createDecryptPool({ workers }));
  const decrypt = pool.mode === 'workers' ? pool.decrypt.bind(pool) : undefined;
  // Two chunks per thread keep every worker busy while the calling thread reads the next ones.
  const depth = Math.max(2, 2 * pool.size);
  const queue: Promise<Uint8Array>[] = [];
  let at = start;
  const fill = (): void => {
    while (queue.length < depth && at < end) {
      const length = Math.min(chunkSize, end - at);
      const chunk = reader.read(at, length, decrypt);
      // Handled here so a chunk that fails while an earlier one is awaited is not "unhandled".
      chunk.catch(() => undefined);
      queue.push(chunk);
      at += length;
    }
  };
  try {
    fill();
    while (queue.length > 0) {
      const chunk = await queue.shift()!;
      fill();
      yield chunk;
    }
  } finally {
    await Promise.allSettled(queue);
    if (!options.pool) await pool.close();
  }
}
