import { crc32 } from 'node:zlib';
import type pg from 'pg';
import type { LogSlice } from './store.js';

/** Rows of a finished log are merged up to this size (PostgreSQL compresses each row's bytes). */
const PACKED_ROW = 1024 * 1024;

/**
 * Merges a finished log's rows into rows of up to PACKED_ROW bytes, under the job's row lock (the caller
 * runs it in a transaction): a log appended line by line no longer costs a row and an index entry per
 * commit. False if the job is gone or packed already.
 */
export async function packLog(c: pg.PoolClient, jobId: string): Promise<boolean> {
  const job = (await c.query<{ packed: boolean }>('SELECT packed FROM jobs WHERE id = $1 FOR UPDATE', [jobId])).rows[0];
  if (!job || job.packed) return false;
  const rows = (await c.query<{ offset: number; chars: number; data: Buffer }>('SELECT "offset", chars, data FROM chunks WHERE job_id = $1 ORDER BY "offset"', [jobId])).rows;
  const merged: { offset: number; chars: number; parts: Buffer[]; size: number }[] = [];
  for (const r of rows) {
    const last = merged.at(-1);
    if (last && last.offset + last.size === r.offset && last.size + r.data.length <= PACKED_ROW) {
      last.parts.push(r.data);
      last.size += r.data.length;
      last.chars += r.chars;
    } else merged.push({ offset: r.offset, chars: r.chars, parts: [r.data], size: r.data.length });
  }
  if (merged.length < rows.length) {
    await c.query('DELETE FROM chunks WHERE job_id = $1', [jobId]);
    await c.query('INSERT INTO chunks (job_id, "offset", chars, data) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bytea[])', [
      jobId,
      merged.map((m) => m.offset),
      merged.map((m) => m.chars),
      merged.map((m) => Buffer.concat(m.parts)),
    ]);
  }
  await c.query('UPDATE jobs SET packed = true WHERE id = $1', [jobId]);
  return true;
}

interface CoverageRow {
  id: string;
  log_start: number;
  log_length: number;
  first: number | null;
  last_end: number | null;
  gaps: number;
}

/**
 * `quick`: every log's rows cover its window without a gap or an overlap. `full` also reads every byte:
 * a log never trimmed must match the CRC-32 kept as its bytes were appended.
 */
export async function verifyLogs(
  db: pg.Pool,
  level: 'quick' | 'full',
  readLog: (jobId: string, from: number, maxBytes: number) => Promise<LogSlice | null>,
): Promise<string[]> {
  const problems: string[] = [];
  const rows = await db.query<CoverageRow>(
    `SELECT j.id, j.log_start, j.log_length, min(c."offset") AS first, max(c."offset" + length(c.data)) AS last_end,
       count(*) FILTER (WHERE c.prev_end IS NOT NULL AND c.prev_end <> c."offset") AS gaps
     FROM jobs j LEFT JOIN (
       SELECT job_id, "offset", data, lag("offset" + length(data)) OVER (PARTITION BY job_id ORDER BY "offset") AS prev_end FROM chunks
     ) c ON c.job_id = j.id
     GROUP BY j.id`,
  );
  for (const r of rows.rows) {
    const empty = r.log_start === r.log_length;
    if (Number(r.gaps) > 0) problems.push(`log ${r.id}: its stored rows leave ${r.gaps} gap(s) or overlap(s)`);
    else if (empty ? r.first !== null && r.last_end! > r.log_start : r.first === null || r.first > r.log_start || r.last_end !== r.log_length) {
      problems.push(`log ${r.id}: its stored rows cover ${r.first ?? '-'}..${r.last_end ?? '-'}, not the window ${r.log_start}..${r.log_length}`);
    }
  }
  if (level === 'quick') return problems;
  const whole = await db.query<{ id: string; log_length: number; log_crc: number }>('SELECT id, log_length, log_crc FROM jobs WHERE log_start = 0 AND log_crc IS NOT NULL');
  for (const j of whole.rows) {
    let crc = 0;
    for (let pos = 0; pos < j.log_length; ) {
      const slice = await readLog(j.id, pos, 4 * 1024 * 1024);
      if (!slice || slice.end <= pos) break;
      crc = crc32(slice.data, crc);
      pos = slice.end;
    }
    if (crc !== j.log_crc) problems.push(`log ${j.id}: its bytes do not match the CRC-32 recorded as they were appended`);
  }
  return problems;
}
