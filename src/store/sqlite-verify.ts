import { crc32, gunzipSync } from 'node:zlib';
import type Database from 'better-sqlite3';
import type { VerifyLevel } from './store.js';

interface ChunkRow {
  job_id: string;
  offset: number;
  data: Buffer;
  crc: number | null;
  size: number | null;
}

interface JobLogRow {
  id: string;
  log_start: number;
  log_length: number;
  packed: number;
}

/** Where a job's stored rows begin and end, and whether they follow each other without a gap. */
interface Extent {
  first: number;
  end: number;
}

/** Stops listing after this many problems of one kind: a badly damaged file would otherwise print millions. */
const MAX_REPORTED = 50;

/**
 * Verifying stored logs (GitLab's `checksum.rb` for us). SQLite's own check finds a damaged page
 * structure; a flipped byte inside log data it cannot see, so every chunk row carries a CRC-32 of its
 * stored bytes, and every job row the offsets its rows must cover. `quick` (at every start) checks the
 * structure, each row's checksum and each log's stored length; `full` (`buildlog check`) runs SQLite's
 * complete integrity check instead and also inflates every packed row.
 */
export function verifySqlite(db: Database.Database, level: VerifyLevel): string[] {
  const problems: string[] = [];
  const report = (line: string) => {
    if (problems.length < MAX_REPORTED) problems.push(line);
    else if (problems.length === MAX_REPORTED) problems.push('(more problems not listed)');
  };
  try {
    const pragma = level === 'full' ? 'integrity_check' : 'quick_check';
    const rows = db.pragma(`${pragma}(${MAX_REPORTED})`) as Record<string, string>[];
    for (const r of rows) {
      const line = Object.values(r)[0]!;
      // SQLite's report may span lines ("*** in database main ***\nPage 15: ..."): one finding, one line.
      if (line !== 'ok') report(`database structure: ${line.replace(/\*\*\* in database main \*\*\*\s*/g, '').replace(/\s*\n\s*/g, '; ')}`);
    }
  } catch (err) {
    report(`database structure: ${(err as Error).message}`);
    return problems;
  }
  // Reading the rows of a damaged structure can fail or mislead; its report is what counts then.
  if (problems.length) return problems;
  try {
    const jobs = new Map<string, JobLogRow>();
    for (const j of db.prepare('SELECT id, log_start, log_length, packed FROM jobs').iterate() as Iterable<JobLogRow>) jobs.set(j.id, j);
    const extents = new Map<string, Extent>();
    const chunks = db.prepare('SELECT job_id, offset, data, crc, size FROM chunks ORDER BY job_id, offset');
    for (const c of chunks.iterate() as Iterable<ChunkRow>) {
      const where = `log of job ${c.job_id}: row at offset ${c.offset}`;
      if (c.crc !== null && crc32(c.data) !== c.crc) report(`${where} fails its checksum (stored bytes damaged)`);
      let size = c.size ?? c.data.length;
      if (c.size !== null && level === 'full') {
        try {
          size = gunzipSync(c.data).length;
          if (size !== c.size) report(`${where} inflates to ${size} bytes, not ${c.size}`);
        } catch (err) {
          report(`${where} cannot be inflated (${(err as Error).message})`);
        }
      }
      const extent = extents.get(c.job_id);
      if (!extent) extents.set(c.job_id, { first: c.offset, end: c.offset + size });
      else {
        if (c.offset !== extent.end) report(`${where} does not follow the previous row (which ends at ${extent.end})`);
        extent.end = c.offset + size;
      }
    }
    for (const id of extents.keys()) if (!jobs.has(id)) report(`log rows of job ${id}, which does not exist`);
    for (const job of jobs.values()) {
      const extent = extents.get(job.id);
      const expected = job.log_length - job.log_start;
      if (!extent) {
        if (expected > 0) report(`log of job ${job.id}: stored length 0 bytes, expected ${expected}`);
        continue;
      }
      // The first retained row may begin before log_start (retention drops whole rows only).
      if (extent.end !== job.log_length || extent.first > job.log_start) {
        report(`log of job ${job.id}: stored bytes ${extent.first}-${extent.end}, expected ${job.log_start}-${job.log_length}`);
      }
    }
  } catch (err) {
    report(`database: ${(err as Error).message}`);
  }
  return problems;
}
