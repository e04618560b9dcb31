/**
 * The search indexer: keeps `search.db` (an SQLite FTS5 trigram index) in step with the logs in
 * `buildlog.db`. It runs on the store's background thread (sqlite-thread.ts), beside the server on another
 * core, so appends are acknowledged without waiting for indexing; it reads the logs through its own
 * read-only connection (WAL lets it read while the server writes) and writes only its own file, so it
 * never holds the log store's write lock.
 *
 * The index holds blocks of whole lines (about 8 KiB each) of every job's retained log, without ANSI
 * codes; the text itself is not stored (`content=''`): answers re-read the lines from the log store.
 * Per job it remembers how far it indexed. Messages from the store name jobs that changed (appends,
 * status, delete); `sync` is answered once everything named before it is indexed. At start it compares
 * every job with what it indexed, so appends made while it was not running (or a lost index) are caught up.
 */
import { rmSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { isTerminal, type JobStatus } from '../core/job.js';
import { blockRanges, countNewlines, indexableEnd, searchableText } from './search-text.js';

export interface SearchWorkerData {
  logFile: string;
  indexFile: string;
}

export type ToWorker = { type: 'changed'; jobIds: string[] } | { type: 'sync'; seq: number } | { type: 'close' };
export type FromWorker = { type: 'ready' } | { type: 'synced'; seq: number } | { type: 'failed'; message: string };

const INDEX_SCHEMA_VERSION = '1';
/** Log bytes read per step. */
const READ_BYTES = 1024 * 1024;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS indexed (
  job_id TEXT PRIMARY KEY,
  indexed_to INTEGER NOT NULL,
  next_line INTEGER NOT NULL,
  final INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blocks (
  id INTEGER PRIMARY KEY,
  job_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  offset INTEGER NOT NULL,
  end INTEGER NOT NULL,
  -- Number of the block's first line among all lines ever indexed for the job, and its newline count.
  line INTEGER NOT NULL,
  lines INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS blocks_by_job ON blocks (job_id, offset);
CREATE INDEX IF NOT EXISTS blocks_by_user ON blocks (user_id, started_at);
CREATE VIRTUAL TABLE IF NOT EXISTS blocks_fts USING fts5(text, content='', contentless_delete=1, tokenize='trigram');
`;

/** Bytes a pass wanted were trimmed (or the job deleted) while it ran: it is rolled back and redone. */
class LogMoved extends Error {}

interface JobRow {
  user_id: string;
  started_at: number;
  status: JobStatus;
  log_start: number;
  log_length: number;
}

interface IndexedRow {
  indexed_to: number;
  next_line: number;
  final: number;
}

/** Opens the index, or makes a new one if it is missing, unreadable or of another version (it is derived data). */
function openIndex(file: string): Database.Database {
  try {
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    const version = db.prepare("SELECT value FROM meta WHERE key = 'version'").get() as { value: string } | undefined;
    if (!version) db.prepare("INSERT INTO meta (key, value) VALUES ('version', ?)").run(INDEX_SCHEMA_VERSION);
    else if (version.value !== INDEX_SCHEMA_VERSION) throw new Error(`index version ${version.value}`);
    return db;
  } catch {
    for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(SCHEMA);
    db.prepare("INSERT INTO meta (key, value) VALUES ('version', ?)").run(INDEX_SCHEMA_VERSION);
    return db;
  }
}

function startIndexer({ logFile, indexFile }: SearchWorkerData) {
  const logs = new Database(logFile, { readonly: true, fileMustExist: true });
  logs.pragma('busy_timeout = 5000');
  const index = openIndex(indexFile);
  // Derived data: a crash may lose the last transactions, which the start-up comparison redoes.
  index.pragma('synchronous = NORMAL');

  const q = {
    job: logs.prepare('SELECT user_id, started_at, status, log_start, log_length FROM jobs WHERE id = ?'),
    allJobs: logs.prepare('SELECT id, status, log_length FROM jobs'),
    chunkAt: logs.prepare('SELECT max(offset) AS offset FROM chunks WHERE job_id = ? AND offset <= ?'),
    chunks: logs.prepare('SELECT offset, data, size FROM chunks WHERE job_id = ? AND offset >= ? AND offset < ? ORDER BY offset'),
    indexed: index.prepare('SELECT indexed_to, next_line, final FROM indexed WHERE job_id = ?'),
    allIndexed: index.prepare('SELECT job_id, indexed_to, final FROM indexed'),
    saveIndexed: index.prepare(
      'INSERT OR REPLACE INTO indexed (job_id, indexed_to, next_line, final) VALUES (?, ?, ?, ?)',
    ),
    insertBlock: index.prepare(
      'INSERT INTO blocks (job_id, user_id, started_at, offset, end, line, lines) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    insertText: index.prepare('INSERT INTO blocks_fts (rowid, text) VALUES (?, ?)'),
    oldBlocks: index.prepare('SELECT id FROM blocks WHERE job_id = ? AND end <= ?'),
    cutBlock: index.prepare('SELECT id, end, line, lines FROM blocks WHERE job_id = ? AND offset < ? AND end > ?'),
    jobBlocks: index.prepare('SELECT id FROM blocks WHERE job_id = ?'),
    dropText: index.prepare('DELETE FROM blocks_fts WHERE rowid = ?'),
    dropBlock: index.prepare('DELETE FROM blocks WHERE id = ?'),
    forget: index.prepare('DELETE FROM indexed WHERE job_id = ?'),
  };

  /**
   * Log bytes [from, to). Each read is its own snapshot (a read transaction held over a whole pass kept
   * the log store's WAL from being checkpointed and slowed appends by a third), so a trim committed since
   * the job's row was read shows as missing bytes: the pass is then dropped and done again.
   */
  function read(jobId: string, from: number, to: number): Buffer {
    const first = (q.chunkAt.get(jobId, from) as { offset: number | null }).offset ?? from;
    const rows = q.chunks.all(jobId, first, to) as { offset: number; data: Buffer; size: number | null }[];
    const bytes = Buffer.concat(
      rows.map((r) => {
        // A finished log's rows are gzip members once the store has packed it (`size`: the inflated length).
        const data = r.size === null ? r.data : gunzipSync(r.data);
        return data.subarray(Math.max(0, from - r.offset), Math.min(data.length, to - r.offset));
      }),
    );
    if (!rows[0] || rows[0].offset > from || bytes.length !== to - from) throw new LogMoved();
    return bytes;
  }

  function drop(ids: { id: number }[]): void {
    for (const { id } of ids) {
      q.dropText.run(id);
      q.dropBlock.run(id);
    }
  }

  /**
   * Brings one job's index up to its log (or removes it, if the job is gone). One transaction. With
   * `unlessBehind`, a running job whose retention window has moved past what was indexed is left as it is
   * ('behind'): its log turns over faster than the passes come, so what a pass indexed would be gone
   * before the next one (a search still has it indexed first).
   */
  const indexJob = index.transaction((jobId: string, unlessBehind: boolean): 'indexed' | 'behind' => {
    const job = q.job.get(jobId) as JobRow | undefined;
    if (!job) {
      drop(q.jobBlocks.all(jobId) as { id: number }[]);
      q.forget.run(jobId);
      return 'indexed';
    }
    const state = (q.indexed.get(jobId) as IndexedRow | undefined) ?? { indexed_to: 0, next_line: 0, final: 0 };
    if (unlessBehind && !isTerminal(job.status) && job.log_start > state.indexed_to) return 'behind';
    // Retention: blocks wholly before the window go; the one it cuts is indexed again with what is left of it.
    if (job.log_start > 0) {
      drop(q.oldBlocks.all(jobId, job.log_start) as { id: number }[]);
      const cut = q.cutBlock.get(jobId, job.log_start, job.log_start) as { id: number; end: number; line: number; lines: number } | undefined;
      if (cut) {
        drop([cut]);
        const rest = read(jobId, job.log_start, cut.end);
        const lines = countNewlines(rest);
        const id = q.insertBlock.run(jobId, job.user_id, job.started_at, job.log_start, cut.end, cut.line + cut.lines - lines, lines).lastInsertRowid;
        q.insertText.run(id, searchableText(rest));
      }
    }
    const terminal = isTerminal(job.status);
    let from = Math.max(state.indexed_to, job.log_start);
    let line = state.next_line;
    while (from < job.log_length) {
      const bytes = read(jobId, from, Math.min(job.log_length, from + READ_BYTES));
      // Up to the last complete line; the rest waits for its newline (or the end of the job).
      const cut = indexableEnd(bytes, terminal && from + bytes.length >= job.log_length);
      if (cut === 0) break;
      for (const [start, end] of blockRanges(bytes, cut)) {
        const block = bytes.subarray(start, end);
        const lines = countNewlines(block);
        const id = q.insertBlock.run(jobId, job.user_id, job.started_at, from + start, from + end, line, lines).lastInsertRowid;
        q.insertText.run(id, searchableText(block));
        line += lines;
      }
      from += cut;
    }
    q.saveIndexed.run(jobId, from, line, terminal && from >= job.log_length ? 1 : 0);
    return 'indexed';
  });

  return { indexJob, allJobs: q.allJobs, allIndexed: q.allIndexed, close: () => (logs.close(), index.close()) };
}

// The work: jobs that changed, each indexed at most once per DELAY_MS (a log being written fast is
// indexed in a few large steps, not once per append: under retention, bytes that leave the window before
// their turn are never indexed at all), and every pending job at once when a search asks (`sync`).
const DELAY_MS = 1000;
/**
 * While logs are being written, the indexer rests this many times as long as its last pass took between
 * two passes (unless a search waits), so it uses at most a quarter of a core: the appends come first.
 * When writing stops, it catches up at full speed.
 */
const REST_FACTOR = 3;

/**
 * Runs the indexer on this thread, talking over `port` (ToWorker in, FromWorker out) until told to close;
 * it closes the port then. Throws if the index cannot be opened.
 */
export function runIndexer(port: MessagePort, data: SearchWorkerData): void {
  const indexer = startIndexer(data);
  /** Job id -> when it is due. */
  const pending = new Map<string, number>();
  /** Waiting searches, each with the jobs that were pending when it asked. */
  const syncs: { seq: number; jobs: Set<string> }[] = [];
  let timer: NodeJS.Timeout | undefined;
  let immediate = false;
  let closed = false;
  /** No pass (but those a search waits for) before this time. */
  let restUntil = 0;
  let lastChangeAt = 0;
  /** Job id -> when it last changed (until it is indexed). */
  const changedAt = new Map<string, number>();

  function enqueue(jobId: string, due = Date.now() + DELAY_MS): void {
    // A later change does not postpone a job that is already waiting: it is indexed at most DELAY_MS late.
    if (!pending.has(jobId)) pending.set(jobId, due);
  }

  /** Runs `step` now if a job is due or a search waits, else when the next job is due. */
  function schedule(): void {
    if (closed) return;
    clearTimeout(timer);
    let next = Infinity;
    for (const due of pending.values()) next = Math.min(next, due);
    if (next !== Infinity) next = Math.max(next, restUntil);
    const now = Date.now();
    if (syncs.some((s) => s.jobs.size > 0) || next <= now) {
      if (!immediate) {
        immediate = true;
        setImmediate(step);
      }
    } else if (next !== Infinity) timer = setTimeout(step, next - now);
  }

  /** Indexes one job per turn (those a search waits for first), so messages are taken in between. */
  function step(): void {
    immediate = false;
    if (closed) return;
    const now = Date.now();
    const wanted = syncs.find((s) => s.jobs.size > 0)?.jobs.values().next().value;
    const jobId = wanted ?? (now >= restUntil ? [...pending].find(([, at]) => at <= now)?.[0] : undefined);
    if (jobId !== undefined) {
      pending.delete(jobId);
      try {
        // A log still being written faster than its window can be indexed waits until it slows down or a search asks.
        const busy = wanted === undefined && now - (changedAt.get(jobId) ?? 0) < DELAY_MS;
        if (indexer.indexJob(jobId, busy) === 'behind') {
          enqueue(jobId);
        } else {
          changedAt.delete(jobId);
          const took = Date.now() - now;
          restUntil = Date.now() - lastChangeAt < DELAY_MS ? Date.now() + REST_FACTOR * took : 0;
        }
      } catch (err) {
        if (err instanceof LogMoved) {
          enqueue(jobId, 0);
          return schedule();
        }
        // The job's next change retries it; the store logs why.
        port.postMessage({ type: 'failed', message: `indexing ${jobId}: ${(err as Error).message}` } satisfies FromWorker);
      }
      for (const s of syncs) s.jobs.delete(jobId);
    }
    answerSyncs();
    schedule();
  }

  /** Searches whose jobs are all indexed may answer. */
  function answerSyncs(): void {
    while (syncs[0] && syncs[0].jobs.size === 0) port.postMessage({ type: 'synced', seq: syncs.shift()!.seq } satisfies FromWorker);
  }

  // Start-up: whatever changed while no indexer ran (or everything, for a new index).
  const done = new Map((indexer.allIndexed.all() as { job_id: string; indexed_to: number; final: number }[]).map((r) => [r.job_id, r]));
  for (const job of indexer.allJobs.iterate() as Iterable<{ id: string; status: JobStatus; log_length: number }>) {
    const seen = done.get(job.id);
    done.delete(job.id);
    if (!seen || seen.indexed_to < job.log_length || (isTerminal(job.status) && !seen.final)) enqueue(job.id, 0);
  }
  for (const gone of done.keys()) enqueue(gone, 0);
  schedule();

  port.on('message', (msg: ToWorker) => {
    if (msg.type === 'changed') {
      lastChangeAt = Date.now();
      for (const id of msg.jobIds) {
        changedAt.set(id, lastChangeAt);
        enqueue(id);
      }
    }
    else if (msg.type === 'sync') {
      syncs.push({ seq: msg.seq, jobs: new Set(pending.keys()) });
      answerSyncs();
    }
    else if (msg.type === 'close') {
      closed = true;
      clearTimeout(timer);
      indexer.close();
      port.close();
      return;
    }
    schedule();
  });
  port.postMessage({ type: 'ready' } satisfies FromWorker);
}
