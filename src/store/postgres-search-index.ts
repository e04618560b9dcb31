import type pg from 'pg';
import { isTerminal, type JobStatus } from '../core/job.js';
import { readRange } from './postgres-read.js';
import { blockRanges, countNewlines, indexableEnd, searchableText } from './search-text.js';

/**
 * The write side of search on PostgreSQL: `search_blocks` holds each indexed log as blocks of whole lines
 * (about 8 KiB, as the SQLite index cuts them), their text without ANSI codes and lower-cased, under a
 * pg_trgm GIN index. A job's `search_to` says how far its log is indexed (through its last complete line,
 * or all of it once the job finished) and `search_line` how many lines come before that; a job whose
 * `search_to` is NULL is not indexed yet and searches read its log instead.
 *
 * Appends index the lines they complete in their own transaction, so a search sees every acknowledged
 * line, on every node; the terminal status change indexes a last line without a newline; jobs from before
 * the index (or created while it was off) are indexed by a catch-up that every node runs.
 */

/** Where a job's index stands: bytes indexed and the lines before them (null: not indexed). */
export interface SearchState {
  search_to: number | null;
  search_line: number;
}

/** Rows for search_blocks, collected over a transaction and inserted at once. */
export class NewBlocks {
  readonly #jobIds: string[] = [];
  readonly #offsets: number[] = [];
  readonly #ends: number[] = [];
  readonly #lines: number[] = [];
  readonly #counts: number[] = [];
  readonly #texts: string[] = [];

  /**
   * Indexes what it can of `bytes` (a job's log from `from`, whose first line is number `line`): whole
   * lines, and the rest too when `whole` (the finished log ends here). Returns the job's new state.
   */
  add(jobId: string, from: number, bytes: Buffer, line: number, whole: boolean): { search_to: number; search_line: number } {
    const end = indexableEnd(bytes, whole);
    for (const [a, b] of blockRanges(bytes, end)) {
      const block = bytes.subarray(a, b);
      const lines = countNewlines(block);
      this.#jobIds.push(jobId);
      this.#offsets.push(from + a);
      this.#ends.push(from + b);
      this.#lines.push(line);
      this.#counts.push(lines);
      // Lower-cased as the answers compare (String.toLowerCase), so that LIKE on it is exactly their match.
      this.#texts.push(searchableText(block).toLowerCase());
      line += lines;
    }
    return { search_to: from + end, search_line: line };
  }

  async insert(c: pg.PoolClient): Promise<void> {
    if (this.#jobIds.length === 0) return;
    await c.query(
      `INSERT INTO search_blocks (job_id, "offset", "end", line, lines, text)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::integer[], $6::text[])`,
      [this.#jobIds, this.#offsets, this.#ends, this.#lines, this.#counts, this.#texts],
    );
  }
}

/** Log bytes read per step when a whole log is indexed. */
const READ_BYTES = 1024 * 1024;

interface UnindexedRow {
  id: string;
  status: JobStatus;
  log_start: number;
  log_length: number;
}

/**
 * Indexes the retained log of one job that has no index yet (the caller runs it in a transaction; the
 * job's row stays locked meanwhile, as appends lock it). False when there is none left, on any node.
 */
export async function indexOneJob(c: pg.PoolClient): Promise<boolean> {
  const job = (
    await c.query<UnindexedRow>('SELECT id, status, log_start, log_length FROM jobs WHERE search_to IS NULL LIMIT 1 FOR UPDATE SKIP LOCKED')
  ).rows[0];
  if (!job) return false;
  await c.query('DELETE FROM search_blocks WHERE job_id = $1', [job.id]);
  const terminal = isTerminal(job.status);
  let state = { search_to: job.log_start, search_line: 0 };
  let carry = Buffer.alloc(0);
  for (let pos = job.log_start; pos < job.log_length; ) {
    const to = Math.min(job.log_length, pos + READ_BYTES);
    const bytes = Buffer.concat([carry, await readRange(c, job.id, pos, to)]);
    const blocks = new NewBlocks();
    state = blocks.add(job.id, state.search_to, bytes, state.search_line, terminal && to === job.log_length);
    await blocks.insert(c);
    carry = bytes.subarray(state.search_to - (to - bytes.length));
    pos = to;
  }
  await c.query('UPDATE jobs SET search_to = $2, search_line = $3 WHERE id = $1', [job.id, state.search_to, state.search_line]);
  return true;
}

/**
 * The finished log's last line, if it has no newline (the caller runs it in the transaction of the
 * terminal status change, which holds the job's row).
 */
export async function indexLastLine(c: pg.PoolClient, job: SearchState & { id: string; log_start: number; log_length: number }): Promise<void> {
  if (job.search_to === null || job.search_to >= job.log_length) return;
  const from = Math.max(job.search_to, job.log_start);
  const blocks = new NewBlocks();
  const state = blocks.add(job.id, from, await readRange(c, job.id, from, job.log_length), job.search_line, true);
  await blocks.insert(c);
  await c.query('UPDATE jobs SET search_to = $2, search_line = $3 WHERE id = $1', [job.id, state.search_to, state.search_line]);
}

const TRIGRAM_INDEX = 'search_blocks_text';

/**
 * Makes sure search_blocks has its trigram index, creating pg_trgm (in `public`, so that no buildlog
 * schema owns it) if the database allows; false if it cannot, and why. Runs inside the migration's
 * transaction and lock.
 */
export async function ensureTrigramIndex(c: pg.PoolClient): Promise<{ ok: true } | { ok: false; reason: string }> {
  const exists = await c.query("SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1", [TRIGRAM_INDEX]);
  if (exists.rowCount) return { ok: true };
  await c.query('SAVEPOINT trigram');
  try {
    await c.query('CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public');
    const where = (await c.query<{ schema: string }>("SELECT extnamespace::regnamespace::text AS schema FROM pg_extension WHERE extname = 'pg_trgm'")).rows[0]!.schema;
    await c.query(`CREATE INDEX ${TRIGRAM_INDEX} ON search_blocks USING gin (text ${where}.gin_trgm_ops)`);
    await c.query('RELEASE SAVEPOINT trigram');
    return { ok: true };
  } catch (err) {
    await c.query('ROLLBACK TO SAVEPOINT trigram');
    return { ok: false, reason: (err as Error).message };
  }
}
