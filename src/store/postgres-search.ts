import type pg from 'pg';
import { readRange } from './postgres-read.js';
import { toJob, type JobRow } from './rows.js';
import { isTerminal } from '../core/job.js';
import { blockMatches, countNewlines, indexableEnd, matchingLines, type IndexedBlock } from './search-text.js';
import type { LogSearchHit, LogSearchLine, LogSearchPage, LogSearchQuery } from './store.js';

/** How much of a log one read brings in while scanning. */
const PAGE_BYTES = 1024 * 1024;

type Row = JobRow & { log_start: number; log_length: number };

/** A LIKE pattern for text containing `needle` (its own %, _ and \ taken literally). */
const containing = (needle: string): string => `%${needle.replace(/[\\%_]/g, '\\$&')}%`;

/**
 * Search on the PostgreSQL store, in one snapshot (the caller's REPEATABLE READ transaction), answering
 * as the SQLite store does. With the trigram index (`indexed`), the candidates are the jobs with a block
 * whose lower-cased text contains the lower-cased query (LIKE: exactly the answers' own comparison, so no
 * job is missed) and their lines are re-read from the log; jobs not indexed yet, or all of them without
 * the index, are read whole.
 */
export async function searchLogs(c: pg.PoolClient, q: LogSearchQuery, indexed: boolean): Promise<LogSearchPage> {
  // As the trigram indexes: shorter texts find nothing (the API refuses them).
  if ([...q.text].length < 3) return { total: 0, hits: [] };
  const needle = q.text.toLowerCase();
  const pattern = containing(needle);
  const answers = new Map<string, () => Promise<LogSearchHit | null>>();
  const found: Row[] = [];
  if (indexed) {
    // The matching blocks first, on their own: with the user's jobs in the same plan, the planner (which
    // knows nothing of how selective a LIKE is, nor of the TOASTed text each row's LIKE unpacks) tends to
    // walk every block of the user instead of asking the trigram index (measured: 0.5 s instead of 1 ms
    // over 1,000 logs of 100 KiB).
    await c.query('SET LOCAL enable_seqscan = off');
    // `whole`: a matching block lies wholly in the window, so the job matches; otherwise only the block
    // that retention cut matched, maybe in its dropped front: its rest is read to decide.
    const rows = (
      await c.query<Row & { whole: boolean }>(
        `WITH m AS MATERIALIZED (SELECT job_id, "offset", "end" FROM search_blocks WHERE text LIKE $2)
         SELECT j.*, bool_or(m."offset" >= j.log_start) AS whole FROM m JOIN jobs j ON j.id = m.job_id
         WHERE j.user_id = $1 AND m."end" > j.log_start GROUP BY j.id`,
        [q.userId, pattern],
      )
    ).rows;
    for (const row of rows) {
      const answer = () => indexedHit(c, row, pattern, needle, q.linesPerJob);
      if (!row.whole && !(await indexedHit(c, row, pattern, needle, 0))) continue;
      found.push(row);
      answers.set(row.id, answer);
    }
  }
  const unindexed = (
    await c.query<Row>(`SELECT * FROM jobs WHERE user_id = $1 ${indexed ? 'AND search_to IS NULL' : ''}`, [q.userId])
  ).rows;
  for (const row of unindexed) {
    const hit = await scannedHit(c, row, needle, q.linesPerJob);
    if (!hit) continue;
    found.push(row);
    answers.set(row.id, async () => hit);
  }
  found.sort((a, b) => b.started_at - a.started_at || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const hits: LogSearchHit[] = [];
  for (const row of found.slice(q.offset, q.offset + q.limit)) {
    const hit = await answers.get(row.id)!();
    if (hit) hits.push(hit);
  }
  return { total: found.length, hits };
}

const BLOCK_COLUMNS = '"offset", "end", line, lines';

/** An indexed job's matching lines (`max` of them; 0: only whether there is one), read back from its log. */
async function indexedHit(c: pg.PoolClient, job: Row, pattern: string, needle: string, max: number): Promise<LogSearchHit | null> {
  const blocks = (
    await c.query<IndexedBlock>(
      // Each true match yields a line: max + 1 blocks are enough to tell that there are more.
      `SELECT ${BLOCK_COLUMNS} FROM search_blocks WHERE job_id = $1 AND "end" > $2 AND text LIKE $3 ORDER BY "offset" LIMIT $4`,
      [job.id, job.log_start, pattern, max + 1],
    )
  ).rows;
  const first = (
    await c.query<IndexedBlock>(`SELECT ${BLOCK_COLUMNS} FROM search_blocks WHERE job_id = $1 AND "end" > $2 ORDER BY "offset" LIMIT 1`, [job.id, job.log_start])
  ).rows[0];
  if (!first) return null;
  const lines = await blockMatches(blocks, first, job.log_start, needle, max, (from, to) => readRange(c, job.id, from, to));
  return hitOf(job, lines, max);
}

/**
 * A job's matching lines found by reading its whole retained log, numbered from the window's start: the
 * lines the index would hold (a running job's unfinished last line waits for its newline, as there).
 */
async function scannedHit(c: pg.PoolClient, job: Row, needle: string, max: number): Promise<LogSearchHit | null> {
  const lines: LogSearchLine[] = [];
  let lineNumber = 1;
  // Bytes of a line cut by the page boundary, carried to the next page.
  let carry = Buffer.alloc(0);
  let carryStart = job.log_start;
  for (let pos = job.log_start; pos < job.log_length && lines.length <= max; ) {
    const to = Math.min(job.log_length, pos + PAGE_BYTES);
    const bytes = Buffer.concat([carry, await readRange(c, job.id, pos, to)]);
    const cut = indexableEnd(bytes, to === job.log_length && isTerminal(job.status));
    const complete = bytes.subarray(0, cut);
    for (const found of matchingLines(complete, carryStart, needle, max - lines.length)) {
      lines.push({ line: lineNumber + found.index, offset: found.offset, text: found.text });
    }
    lineNumber += countNewlines(complete);
    carry = bytes.subarray(cut);
    carryStart += cut;
    pos = to;
  }
  return hitOf(job, lines, max);
}

function hitOf(job: Row, lines: LogSearchLine[], max: number): LogSearchHit | null {
  if (lines.length === 0) return null;
  return { job: toJob(job), lines: lines.slice(0, max), moreLines: lines.length > max };
}
