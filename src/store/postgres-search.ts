import type { JobRecord } from '../core/job.js';
import { countNewlines, matchingLines } from './search-text.js';
import type { LogInfo, LogSearchHit, LogSearchPage, LogSearchQuery, LogSlice } from './store.js';

/** How much of a log one read brings in while scanning. */
const PAGE_BYTES = 1024 * 1024;

export interface ScannedLogs {
  jobsNewestFirst(userId: string): Promise<JobRecord[]>;
  logInfo(jobId: string): Promise<LogInfo | null>;
  read(jobId: string, from: number, maxBytes: number): Promise<LogSlice | null>;
}

/**
 * Search on the PostgreSQL store, without an index: every retained log of the user is read and its lines
 * matched (the same rules as the SQLite index's answers, search-text.ts). Exact and always current, and
 * its cost grows with the bytes a user keeps, which retention and expiry bound; an index (pg_trgm over
 * lines) is the step after this one.
 */
export async function searchByScanning(q: LogSearchQuery, logs: ScannedLogs): Promise<LogSearchPage> {
  const needle = q.text.toLowerCase();
  const hits: LogSearchHit[] = [];
  let total = 0;
  for (const job of await logs.jobsNewestFirst(q.userId)) {
    const inPage = total >= q.offset && total < q.offset + q.limit;
    const hit = await scanLog(job, logs, needle, inPage ? q.linesPerJob : 0);
    if (!hit) continue;
    if (inPage) hits.push(hit);
    total++;
  }
  return { total, hits };
}

/** The matching lines of one log (`max` of them, 0 to learn only whether it matches), numbered from the window's start. */
async function scanLog(job: JobRecord, logs: ScannedLogs, needle: string, max: number): Promise<LogSearchHit | null> {
  const info = await logs.logInfo(job.id);
  if (!info) return null;
  const lines: LogSearchHit['lines'] = [];
  let pos = info.start;
  let lineNumber = 1;
  // Bytes of a line cut by the page boundary, carried to the next page.
  let carry = Buffer.alloc(0);
  let carryStart = pos;
  while (pos < info.length && lines.length <= max) {
    const slice = await logs.read(job.id, pos, PAGE_BYTES);
    if (!slice || slice.end <= slice.start) break;
    const bytes = carry.length ? Buffer.concat([carry, slice.data]) : slice.data;
    const last = slice.end >= info.length;
    // Whole lines only, unless the log ends here (its last line may have no newline).
    const cut = last ? bytes.length : bytes.lastIndexOf(0x0a) + 1;
    const complete = bytes.subarray(0, cut);
    for (const found of matchingLines(complete, carryStart, needle, max - lines.length)) {
      lines.push({ line: lineNumber + found.index, offset: found.offset, text: found.text });
    }
    lineNumber += countNewlines(complete);
    carry = Buffer.from(bytes.subarray(cut));
    carryStart += cut;
    pos = slice.end;
  }
  if (lines.length === 0) return null;
  return { job, lines: lines.slice(0, max), moreLines: lines.length > max };
}
