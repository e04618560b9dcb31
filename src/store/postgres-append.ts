import { crc32 } from 'node:zlib';
import type pg from 'pg';
import { isTerminal, type JobStatus } from '../core/job.js';
import { countChars, planTrim } from '../core/retention.js';
import { readRange } from './postgres-read.js';
import { NewBlocks, type SearchState } from './postgres-search-index.js';
import type { AppendResult, ImportedLog } from './store.js';

/**
 * The append path of the PostgreSQL store: a batch of appends (what arrived during the previous commit)
 * becomes one transaction that locks the jobs' rows, inserts new rows of bytes (never rewriting one),
 * moves each log's retention window and indexes the lines the batch completed for search.
 */

/**
 * Appends merged into one row: consecutive appends to one log within a commit become a single row of at
 * most this size (a row is never rewritten once committed, so merging happens only inside a batch).
 */
const MAX_ROW = 256 * 1024;

export interface LogRow extends SearchState {
  id: string;
  status: JobStatus;
  log_start: number;
  log_length: number;
  log_chars: number;
  log_crc: number | null;
}

export interface PendingAppend {
  jobId: string;
  data: Buffer;
  expectedOffset: number | undefined;
  committed: ((r: AppendResult) => void) | undefined;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}

interface NewChunk {
  jobId: string;
  offset: number;
  parts: Buffer[];
  size: number;
}

/** One commit's appends (the caller runs it in a transaction): locks the jobs' rows, writes new rows, trims, indexes, saves the lengths. */
export async function appendBatch(c: pg.PoolClient, batch: PendingAppend[], retentionChars: number): Promise<AppendResult[]> {
  const ids = [...new Set(batch.map((p) => p.jobId))].sort();
  // Locked in id order, so two nodes locking overlapping sets cannot deadlock.
  const locked = await c.query<LogRow>(
    'SELECT id, status, log_start, log_length, log_chars, log_crc, search_to, search_line FROM jobs WHERE id = ANY($1) ORDER BY id FOR UPDATE',
    [ids],
  );
  const rows = new Map(locked.rows.map((r) => [r.id, r]));
  /** Each log's length before this batch: bytes past it are in `chunks`, not in the table yet. */
  const committed = new Map(locked.rows.map((r) => [r.id, r.log_length]));
  const dirty = new Set<LogRow>();
  const chunks: NewChunk[] = [];
  const open = new Map<string, NewChunk>();
  const results: AppendResult[] = [];
  for (const p of batch) {
    const row = rows.get(p.jobId);
    if (!row) {
      results.push({ kind: 'not-found' });
      continue;
    }
    if (isTerminal(row.status)) {
      results.push({ kind: 'terminal', status: row.status });
      continue;
    }
    if (p.expectedOffset !== undefined && p.expectedOffset !== row.log_length) {
      const queued = chunks.filter((k) => k.jobId === row.id);
      const retry = await isStoredRetry(c, row, committed.get(row.id)!, queued, p.expectedOffset, p.data);
      results.push(retry ? { kind: 'duplicate', length: row.log_length } : { kind: 'offset-mismatch', length: row.log_length });
      continue;
    }
    const start = row.log_length;
    dirty.add(row);
    results.push({ kind: 'appended', start, end: start + p.data.length });
    if (p.data.length === 0) continue;
    for (let i = 0; i < p.data.length; ) {
      let chunk = open.get(p.jobId);
      if (!chunk || chunk.size === MAX_ROW) {
        chunk = { jobId: p.jobId, offset: start + i, parts: [], size: 0 };
        chunks.push(chunk);
        open.set(p.jobId, chunk);
      }
      const piece = p.data.subarray(i, i + MAX_ROW - chunk.size);
      chunk.parts.push(piece);
      chunk.size += piece.length;
      i += piece.length;
    }
    row.log_length = start + p.data.length;
    if (row.log_crc !== null) row.log_crc = crc32(p.data, row.log_crc);
  }
  if (chunks.length) {
    const data = chunks.map((k) => (k.parts.length === 1 ? k.parts[0]! : Buffer.concat(k.parts)));
    const chars = data.map((d) => countChars(d));
    chunks.forEach((k, i) => (rows.get(k.jobId)!.log_chars += chars[i]!));
    await c.query('INSERT INTO chunks (job_id, "offset", chars, data) SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[])', [
      chunks.map((k) => k.jobId),
      chunks.map((k) => k.offset),
      chars,
      data,
    ]);
  }
  for (const row of dirty) if (row.log_chars > retentionChars) await trim(c, row, retentionChars);
  await index(c, chunks, rows, committed);
  if (dirty.size) {
    const list = [...dirty];
    await c.query(
      `UPDATE jobs SET log_start = u.s, log_length = u.l, log_chars = u.c, log_crc = u.crc, search_to = u.st, search_line = u.sl, active_at = $8
       FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS u(id, s, l, c, crc, st, sl)
       WHERE jobs.id = u.id`,
      [
        list.map((r) => r.id),
        list.map((r) => r.log_start),
        list.map((r) => r.log_length),
        list.map((r) => r.log_chars),
        list.map((r) => r.log_crc),
        list.map((r) => r.search_to),
        list.map((r) => r.search_line),
        Date.now(),
      ],
    );
  }
  return results;
}

/**
 * Indexes the lines this batch completed in the indexed logs it wrote to: each log's part not indexed
 * yet (a line still without its newline, from the table) and the batch's bytes (from memory).
 */
async function index(c: pg.PoolClient, chunks: NewChunk[], rows: Map<string, LogRow>, committed: Map<string, number>): Promise<void> {
  const blocks = new NewBlocks();
  const written = new Map<string, Buffer[]>();
  for (const k of chunks) written.set(k.jobId, [...(written.get(k.jobId) ?? []), ...k.parts]);
  for (const [jobId, parts] of written) {
    const row = rows.get(jobId)!;
    if (row.search_to === null) continue;
    const before = committed.get(jobId)!;
    // Retention may have dropped bytes that were not indexed yet: the window starts the index again.
    const from = Math.max(row.search_to, row.log_start);
    const batch = Buffer.concat(parts);
    const bytes = from < before ? Buffer.concat([await readRange(c, jobId, from, before), batch]) : batch.subarray(from - before);
    Object.assign(row, blocks.add(jobId, from, bytes, row.search_line, false));
  }
  await blocks.insert(c);
}

/**
 * Fills a job's empty log with one copied from another store (the caller runs it in a transaction):
 * rows at the source's offsets, its length and checksum, then retention as after an append. Resolves with the job's status.
 */
export async function importLog(c: pg.PoolClient, jobId: string, log: ImportedLog, retentionChars: number): Promise<JobStatus> {
  const row = (await c.query<LogRow>('SELECT id, status, log_start, log_length, log_chars, log_crc, search_to, search_line FROM jobs WHERE id = $1 FOR UPDATE', [jobId])).rows[0];
  if (!row) throw new Error(`There is no job ${jobId} to import a log into.`);
  if (row.log_length !== 0) throw new Error(`The log of job ${jobId} is not empty; a log is imported only into an empty one.`);
  const rows: Buffer[] = [];
  for (let i = 0; i < log.data.length; i += MAX_ROW) rows.push(log.data.subarray(i, i + MAX_ROW));
  const chars = rows.map((d) => countChars(d));
  if (rows.length) {
    await c.query('INSERT INTO chunks (job_id, "offset", chars, data) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[])', [
      jobId,
      rows.map((_, i) => log.start + i * MAX_ROW),
      chars,
      rows,
    ]);
  }
  row.log_start = log.start;
  row.log_length = log.start + log.data.length;
  row.log_chars = chars.reduce((a, n) => a + n, 0);
  row.log_crc = log.crc32;
  if (row.log_chars > retentionChars) await trim(c, row, retentionChars);
  // Searched by reading it until the catch-up (postgres-search-index.ts) has indexed it. packed = false: a
  // finished job's empty log may have been packed already; the store packs it again with its bytes.
  await c.query('UPDATE jobs SET log_start = $2, log_length = $3, log_chars = $4, log_crc = $5, active_at = $6, search_to = NULL, search_line = 0, packed = false WHERE id = $1', [
    jobId,
    row.log_start,
    row.log_length,
    row.log_chars,
    row.log_crc,
    Date.now(),
  ]);
  return row.status;
}

/**
 * An append at an offset already covered: a retry if its retained bytes equal what is stored, in the
 * table up to `committed` and after it in the rows this batch is about to insert.
 */
async function isStoredRetry(c: pg.PoolClient, row: LogRow, committed: number, queued: NewChunk[], offset: number, data: Buffer): Promise<boolean> {
  const end = offset + data.length;
  if (end > row.log_length) return false;
  const from = Math.max(offset, row.log_start);
  if (from >= end) return true;
  const parts = [await readRange(c, row.id, from, Math.min(end, committed))];
  for (const k of queued) {
    const bytes = Buffer.concat(k.parts);
    const a = Math.max(from, k.offset);
    const b = Math.min(end, k.offset + k.size);
    if (a < b) parts.push(bytes.subarray(a - k.offset, b - k.offset));
  }
  return Buffer.concat(parts).equals(data.subarray(from - offset));
}

/** Moves the window's start so that it holds at most the retention limit, deleting the rows wholly before it. */
async function trim(c: pg.PoolClient, row: LogRow, retentionChars: number): Promise<void> {
let excess = row.log_chars - retentionChars;
  let pos = row.log_start;
  // Whole rows are dropped by their character counts; only the row where the cut falls (and the first
  // one, if an earlier cut fell inside it) is read.
  const sizes = await c.query<{ offset: number; chars: number; size: number; first: number }>(
    `SELECT "offset", chars, length(data) AS size, get_byte(data, 0) AS first FROM chunks
     WHERE job_id = $1 AND "offset" + length(data) > $2 ORDER BY "offset"`,
    [row.id, pos],
  );
  for (const chunk of sizes.rows) {
    const whole = chunk.offset >= pos;
    // Done once the cut is at the start of a character (bytes continuing a dropped one go too).
    if (excess === 0 && whole && (chunk.first & 0xc0) !== 0x80) break;
    if (whole && chunk.chars <= excess) {
      excess -= chunk.chars;
      row.log_chars -= chunk.chars;
      pos = chunk.offset + chunk.size;
      continue;
    }
    const data = (await c.query<{ data: Buffer }>('SELECT data FROM chunks WHERE job_id = $1 AND "offset" = $2', [row.id, chunk.offset])).rows[0]!.data;
    const plan = planTrim([{ offset: chunk.offset, data }], pos, excess);
    excess -= plan.charsDropped;
    row.log_chars -= plan.charsDropped;
    pos = plan.start;
    if (plan.done) break;
  }
  row.log_start = pos;
  await c.query('DELETE FROM chunks WHERE job_id = $1 AND "offset" + length(data) <= $2', [row.id, pos]);
  // Search blocks wholly before the window; the one it cuts stays (answers read only its retained part).
  await c.query('DELETE FROM search_blocks WHERE job_id = $1 AND "offset" < $2 AND "end" <= $2', [row.id, pos]);
}
