import { promisify } from 'node:util';
import { crc32, gunzip, gzip } from 'node:zlib';
import type Database from 'better-sqlite3';
import { TERMINAL_SQL } from './rows.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * Bytes of log per packed row. Each row is one gzip member, so a read inflates at most this much per row
 * it touches, and the rows of a whole log, concatenated, are a valid gzip stream of the raw log (a
 * gzip-accepting client can be sent them as they are).
 */
export const PACK_BLOCK = 256 * 1024;

/** Free space handed back to the filesystem in one step: a bounded amount of work on the event loop. */
export const RECLAIM_STEP_BYTES = 16 * 1024 * 1024;

/**
 * Hands up to `maxBytes` of free pages back to the filesystem (incremental auto-vacuum; a no-op on data
 * dirs created without it). Resolves with the bytes returned.
 */
export function reclaimPages(db: Database.Database, maxBytes: number): number {
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  const before = db.pragma('freelist_count', { simple: true }) as number;
  if (before === 0) return 0;
  db.pragma(`incremental_vacuum(${Math.max(1, Math.floor(maxBytes / pageSize))})`);
  return (before - (db.pragma('freelist_count', { simple: true }) as number)) * pageSize;
}

interface PackedRow {
  offset: number;
  size: number;
  data: Buffer;
}

/**
 * Compacting finished logs (GitLab's `archive.rb` for us): once a job is terminal its log never changes,
 * so its chunk rows are replaced by gzip members of PACK_BLOCK bytes each. Compression runs on zlib's
 * thread pool and the swap is one short transaction, so appends and reads are not held up; a log that
 * changed meanwhile (deleted) is left alone. Reads of packed rows inflate them, also off the event loop.
 */
export class LogPacker {
  readonly #stmt;
  readonly #queue = new Set<string>();
  #running: Promise<number> | null = null;
  #stopped = false;

  constructor(
    private readonly db: Database.Database,
    /** Pack each log soon after it finishes; otherwise only when packAll is called. */
    private readonly background = true,
    /** Called with each write failure of a background pass (the log stays unpacked, and is tried again at the next start). */
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.#stmt = {
      job: db.prepare(`SELECT log_start, log_length, packed, status IN ${TERMINAL_SQL} AS terminal FROM jobs WHERE id = ?`),
      rows: db.prepare('SELECT offset, data FROM chunks WHERE job_id = ? ORDER BY offset'),
      unpacked: db.prepare(`SELECT id FROM jobs WHERE packed = 0 AND status IN ${TERMINAL_SQL} LIMIT ?`),
      drop: db.prepare('DELETE FROM chunks WHERE job_id = ?'),
      insert: db.prepare('INSERT INTO chunks (job_id, offset, data, crc, size) VALUES (?, ?, ?, ?, ?)'),
      mark: db.prepare('UPDATE jobs SET packed = 1 WHERE id = ?'),
    };
  }

  /** Packs this job's log soon, in the background. */
  schedule(jobId: string): void {
    if (this.#stopped || !this.background) return;
    this.#queue.add(jobId);
    void this.#run().catch(this.onError);
  }

  /** Packs every finished log not packed yet (the scheduled ones included); resolves with how many it packed. */
  async packAll(): Promise<number> {
    let packed = 0;
    for (;;) {
      // Wait for a background pass first, so the two never pack the same log at once.
      packed += await (this.#running ?? 0);
      if (this.#stopped) return packed;
      const ids = this.#stmt.unpacked.all(500) as { id: string }[];
      if (ids.length === 0) return packed;
      for (const { id } of ids) this.#queue.add(id);
      const before = packed;
      packed += await this.#run();
      // Nothing could be packed (each failed, or was deleted meanwhile): do not spin.
      if (packed === before) return packed;
    }
  }

  #run(): Promise<number> {
    this.#running ??= this.#drain().finally(() => (this.#running = null));
    return this.#running;
  }

  async #drain(): Promise<number> {
    let packed = 0;
    while (!this.#stopped) {
      const next = this.#queue.values().next();
      if (next.done) break;
      this.#queue.delete(next.value);
      if (await this.#pack(next.value)) packed++;
    }
    return packed;
  }

  async #pack(jobId: string): Promise<boolean> {
    const job = this.#stmt.job.get(jobId) as { log_start: number; log_length: number; packed: number; terminal: number } | undefined;
    if (!job || job.packed || !job.terminal) return false;
    const rows = this.#stmt.rows.all(jobId) as { offset: number; data: Buffer }[];
    const raw = rows.length === 1 ? rows[0]!.data : Buffer.concat(rows.map((r) => r.data));
    const start = rows[0]?.offset ?? job.log_start;
    if (start + raw.length !== job.log_length) return false; // not what the job row says: leave it to `check`
    const blocks: PackedRow[] = [];
    for (let i = 0; i < raw.length; i += PACK_BLOCK) {
      const part = raw.subarray(i, i + PACK_BLOCK);
      blocks.push({ offset: start + i, size: part.length, data: await gzipAsync(part) });
      if (this.#stopped) return false;
    }
    const swapped = this.db.transaction(() => {
      // Deleted (or already packed) while we compressed: nothing to swap.
      const now = this.#stmt.job.get(jobId) as typeof job | undefined;
      if (!now || now.packed || now.log_length !== job.log_length) return false;
      this.#stmt.drop.run(jobId);
      for (const b of blocks) this.#stmt.insert.run(jobId, b.offset, b.data, crc32(b.data), b.size);
      this.#stmt.mark.run(jobId);
      return true;
    })();
    // The unpacked rows' pages go back to the filesystem, so no stale copy of the log stays in the file.
    if (swapped) reclaimPages(this.db, RECLAIM_STEP_BYTES);
    return swapped;
  }

  /** Stops packing; an in-flight compression finishes but is not written. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.clear();
    await this.#running?.catch(() => undefined);
  }
}

/** The raw bytes [from, to) of a packed log, from its rows that cover them (in offset order). */
export async function unpackRange(rows: readonly PackedRow[], from: number, to: number): Promise<Buffer> {
  const parts = await Promise.all(
    rows.map(async (r) => {
      const raw = await gunzipAsync(r.data);
      return raw.subarray(Math.max(0, from - r.offset), Math.min(raw.length, to - r.offset));
    }),
  );
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
