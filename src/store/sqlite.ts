import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, gunzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { isTerminal, type JobRecord, type JobStatus, type StatusPatch } from '../core/job.js';
import { countChars, planTrim, type StoredChunk } from '../core/retention.js';
import type { AppendResult, ImportedLog, JobCount, JobListQuery, JobPage, LogChecksum, LogInfo, LogState, LogSearchPage, LogSearchQuery, LogSlice, Store, UserRecord, VerifyLevel } from './store.js';
import { StoreOpenError, StoreUnavailableError } from './errors.js';
import { guard, storeFault } from './sqlite-faults.js';
import { WalSync } from './sqlite-wal-sync.js';
import { prepareStatements } from './sqlite-statements.js';
import { Housekeeping } from './sqlite-housekeeping.js';
import { JobQueries } from './sqlite-jobs.js';
import { LogPacker, reclaimPages, RECLAIM_STEP_BYTES, unpackRange } from './sqlite-pack.js';
import { prepareSchema } from './sqlite-schema.js';
import { SearchIndex } from './sqlite-search.js';
import { StoreThread } from './sqlite-thread.js';
import { toJob, toUser, type JobRow, type UserRow } from './rows.js';
import { verifySqlite } from './sqlite-verify.js';

/**
 * A row up to this size sits inside its B-tree page (chunks is WITHOUT ROWID: with 16 KiB pages a record of
 * up to 4,088 bytes, key included, is stored in the page; a larger one spills into overflow pages). Small
 * appends are merged into a last row of this size at most: extending a row rewrites it whole, and a
 * 100-byte append into rows of up to 64 KiB cost the store 120-200 us of CPU (growing with the row), into
 * rows kept in the page 35-47 us.
 */
const INLINE_ROW = 3 * 1024;
/**
 * Larger appends (a runner's few KiB at a time) are merged into a last row that is itself larger, up to
 * this size: a row that spills takes whole overflow pages, so rows of a few KiB each would take four times
 * their size on disk. Neither kind extends the other's rows.
 */
const MERGE_LIMIT = 64 * 1024;
/**
 * Large appends are split into rows of at most this size: SQLite reads a BLOB whole, so a page read (or
 * a trim) of a multi-megabyte row would load all of it each time.
 */
const MAX_ROW = 256 * 1024;
const TRIM_PAGE = 64;


interface LogRow {
  status: JobStatus;
  log_start: number;
  log_length: number;
  log_chars: number;
  log_crc: number | null;
  packed: number;
}


interface PendingAppend {
  jobId: string;
  data: Buffer;
  expectedOffset: number | undefined;
  committed: ((r: AppendResult) => void) | undefined;
  resolve: (r: AppendResult) => void;
  reject: (e: unknown) => void;
}


export interface SqliteStoreOptions {
  dataDir: string;
  retentionChars: number;
  /** Index logs for search from the start (the server); otherwise the first search starts the indexer. */
  indexLogs?: boolean;
  /** Where indexing problems are reported. */
  onProblem?: (message: string) => void;
  /** fsync every commit (default), so an acknowledged append survives power loss too, not only a crash of the server. */
  fsync?: boolean;
  /** Told the duration of every group commit (for the metrics). */
  onCommit?: (seconds: number) => void;
  /** Pack finished logs in the background (default); the one-shot commands (`check`, `gc`) leave it to the server. */
  background?: boolean;
}

/** The database file of a data dir. */
export const databaseFile = (dataDir: string) => join(dataDir, 'buildlog.db');

/**
 * The embedded store: one SQLite file in WAL mode. A committed append is in the WAL, so it survives the
 * server's crash (kill -9); with `fsync` every write is also flushed to the disk before it is
 * acknowledged, so it survives power loss (WalSync: the flush runs off the event loop, and what is
 * committed is readable, and followed live, meanwhile). Appends that arrive while the event loop is busy
 * are committed together in one transaction (group commit), and commits made while a flush runs share the next.
 */
export class SqliteStore implements Store {
  readonly #db: Database.Database;
  readonly #retentionChars: number;
  #queue: PendingAppend[] = [];
  #flushScheduled = false;
  #closed = false;
  /** Flushes the WAL to disk (with `fsync`); null: commits are acknowledged once in the WAL. */
  readonly #walSync: WalSync | null;
  /** Checkpoints off the event loop (the server's store) and runs the search indexer. */
  readonly #thread: StoreThread;
  readonly #stmt: ReturnType<typeof prepareStatements>;
  readonly #jobs: JobQueries;
  readonly #search: SearchIndex;
  readonly #housekeeping: Housekeeping;
  readonly #onCommit: ((seconds: number) => void) | undefined;
  readonly #packer: LogPacker;

  constructor(options: SqliteStoreOptions) {
    this.#retentionChars = options.retentionChars;
    this.#onCommit = options.onCommit;
    mkdirSync(options.dataDir, { recursive: true });
    const file = databaseFile(options.dataDir);
    const isNew = !existsSync(file);
    let opened: Database.Database | undefined;
    try {
      opened = new Database(file);
      // Only takes effect on a new file. Logs are large BLOBs: 16 KiB pages cut the overflow-page
      // bookkeeping of 256 KiB rows (bench/ingest.ts: 100 MiB in 4 MiB appends ~110 -> ~135 MiB/s) and
      // cost nothing measurable on small appends.
      opened.pragma('page_size = 16384');
      // Also only on a new file: pages freed by packing, expiry and deletion can be handed back to the
      // filesystem (reclaimSpace), so the file shrinks and holds no stale free pages. Data dirs created
      // before this keep their free pages for reuse (a VACUUM converts them).
      opened.pragma('auto_vacuum = INCREMENTAL');
      opened.pragma('journal_mode = WAL');
      // NORMAL: a commit writes the WAL without flushing it; the flush for durability is #walSync's.
      opened.pragma('synchronous = NORMAL');
      opened.pragma('busy_timeout = 5000');
    } catch (err) {
      opened?.close();
      throw new StoreOpenError(`${file} is not a usable SQLite database (${(err as Error).message})`);
    }
    this.#db = opened;
    this.#walSync = options.fsync === false ? null : new WalSync(`${file}-wal`);
    prepareSchema(this.#db, file, isNew);
    const db = this.#db;
    this.#jobs = new JobQueries(db);
    this.#housekeeping = new Housekeeping(db, options.dataDir);
    const background = options.background ?? true;
    const onProblem = options.onProblem ?? (() => undefined);
    this.#thread = new StoreThread({
      file,
      // The one-shot commands leave checkpoints to SQLite.
      checkpointEveryMs: background ? 250 : null,
      onProblem,
      checkpointing: (running) => db.pragma(`wal_autocheckpoint = ${running ? 0 : 1000}`),
    });
    this.#search = new SearchIndex(
      { logFile: file, indexFile: join(options.dataDir, 'search.db') },
      this.#thread,
      {
        job: (id) => {
          const row = this.#stmt.getJob.get(id) as JobRow | undefined;
          return row ? toJob(row) : null;
        },
        logStart: (id) => (this.#stmt.logRow.get(id) as LogRow | undefined)?.log_start ?? null,
        read: (id, from, to) => this.#readRange(id, from, to),
      },
      onProblem,
    );
    if (options.indexLogs) this.#search.start().catch(() => undefined);
    this.#stmt = prepareStatements(db);
    // Finished logs left unpacked (by an older version, or a stop before the packer got to them).
    this.#packer = new LogPacker(db, background);
    if (background) setImmediate(() => void this.#packer.packAll().catch(() => undefined));
  }

  async createUser(user: UserRecord): Promise<void> {
    guard(() => this.#stmt.insertUser.run(user.id, user.username, user.tokenHash, user.proxyPassword, user.createdAt));
    await this.#durable();
  }

  /** Resolves once every commit so far is on disk (with `fsync`); a failed flush is a disk fault. */
  async #durable(): Promise<void> {
    try {
      await this.#walSync?.flush();
    } catch (err) {
      throw new StoreUnavailableError(`The log store is unavailable: the disk cannot be written (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, { cause: err });
    }
  }

  async userByTokenHash(tokenHash: string): Promise<UserRecord | null> {
    const row = this.#stmt.userByToken.get(tokenHash) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  async userById(id: string): Promise<UserRecord | null> {
    const row = this.#stmt.userById.get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  async userByName(username: string): Promise<UserRecord | null> {
    const row = this.#stmt.userByName.get(username) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  async countUsers(): Promise<number> {
    return (this.#stmt.countUsers.get() as { n: number }).n;
  }

  async listUsers(): Promise<UserRecord[]> {
    return (this.#stmt.listUsers.all() as UserRow[]).map(toUser);
  }

  async createJob(job: JobRecord): Promise<void> {
    guard(() =>
      this.#stmt.insertJob.run({
        ...job,
        meta: JSON.stringify(job.meta),
        options: JSON.stringify(job.options),
      }),
    );
    await this.#durable();
  }

  async staleJobs(activeBefore: number, limit: number): Promise<JobRecord[]> {
    return (this.#stmt.staleJobs.all(activeBefore, limit) as JobRow[]).map(toJob);
  }

  async abortingSince(changedBefore: number, limit: number): Promise<JobRecord[]> {
    return (this.#stmt.abortingSince.all(changedBefore, limit) as JobRow[]).map(toJob);
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = this.#stmt.getJob.get(id) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async updateJobStatus(id: string, from: JobStatus, patch: StatusPatch): Promise<JobRecord | null> {
    const changed = guard(() => this.#stmt.updateStatus.run({
      now: Date.now(),
      id,
      from,
      status: patch.status,
      setMessage: patch.statusMessage !== undefined ? 1 : 0,
      statusMessage: patch.statusMessage ?? null,
      setExitCode: patch.exitCode !== undefined ? 1 : 0,
      exitCode: patch.exitCode ?? null,
      setFinishedAt: patch.finishedAt !== undefined ? 1 : 0,
      finishedAt: patch.finishedAt ?? null,
    })).changes;
    if (!changed) return null;
    this.#search.changed(id);
    if (isTerminal(patch.status)) this.#packer.schedule(id);
    await this.#durable();
    return this.getJob(id);
  }

  async latestJob(actId: string, kind: 'build' | 'run', userId?: string): Promise<JobRecord | null> {
    const row = (
      userId ? this.#stmt.latestJobOfUser.get(actId, kind, userId) : this.#stmt.latestJob.get(actId, kind)
    ) as JobRow | undefined;
    return row ? toJob(row) : null;
  }

  async listJobs(query: JobListQuery): Promise<JobPage> {
    return this.#jobs.list(query);
  }

  async buildNumbers(userId: string, actId: string): Promise<string[]> {
    return this.#jobs.buildNumbers(userId, actId);
  }

  async deleteJob(id: string): Promise<boolean> {
    const deleted = guard(() => this.#jobs.deleteJob(id));
    this.#search.changed(id);
    await this.#durable();
    return deleted;
  }

  searchLogs(query: LogSearchQuery): Promise<LogSearchPage> {
    return this.#search.search(query);
  }

  async userUsage(userId: string): Promise<{ jobs: number; bytes: number }> {
    return this.#stmt.userUsage.get(userId) as { jobs: number; bytes: number };
  }

  append(jobId: string, data: Buffer, expectedOffset?: number, committed?: (r: AppendResult) => void): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ jobId, data, expectedOffset, committed, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** Commits the queued appends in one transaction; acknowledges them once that commit is on disk. */
  #flush(): void {
    this.#flushScheduled = false;
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    let results: AppendResult[];
    const started = this.#onCommit ? performance.now() : 0;
    try {
      results = this.#db.transaction(() => this.#appendBatch(batch))();
    } catch (err) {
      const fault = storeFault(err);
      for (const p of batch) p.reject(fault);
      return;
    }
    const live: [PendingAppend, AppendResult][] = [];
    batch.forEach((p, i) => {
      this.#search.changed(p.jobId);
      try {
        p.committed?.(results[i]!);
        live.push([p, results[i]!]);
      } catch (err) {
        p.reject(err);
      }
    });
    this.#durable().then(
      () => {
        this.#onCommit?.((performance.now() - started) / 1000);
        for (const [p, r] of live) p.resolve(r);
      },
      (err) => {
        for (const [p] of live) p.reject(err);
      },
    );
  }


  /** Runs inside one transaction; log rows are cached so each job's row is written once per batch. */
  #appendBatch(batch: PendingAppend[]): AppendResult[] {
    const rows = new Map<string, LogRow | null>();
    const dirty = new Set<string>();
    const now = Date.now();
    const results = batch.map((p) => {
      let row = rows.get(p.jobId);
      if (row === undefined) {
        row = (this.#stmt.logRow.get(p.jobId) as LogRow | undefined) ?? null;
        rows.set(p.jobId, row);
      }
      if (!row) return { kind: 'not-found' } as const;
      const result = this.#appendOne(p, row);
      if (result.kind === 'appended') dirty.add(p.jobId);
      return result;
    });
    for (const jobId of dirty) {
      const row = rows.get(jobId)!;
      this.#stmt.saveLogRow.run(row.log_start, row.log_length, row.log_chars, row.log_crc, now, jobId);
    }
    return results;
  }

  #appendOne(p: PendingAppend, row: LogRow): AppendResult {
    const { data, expectedOffset, jobId } = p;
    if (isTerminal(row.status)) {
      return { kind: 'terminal', status: row.status };
    }
    if (expectedOffset !== undefined && expectedOffset !== row.log_length) {
      return this.#isStoredRetry(jobId, row, expectedOffset, data)
        ? { kind: 'duplicate', length: row.log_length }
        : { kind: 'offset-mismatch', length: row.log_length };
    }
    const start = row.log_length;
    if (data.length === 0) return { kind: 'appended', start, end: start };
    const last = this.#stmt.lastChunk.get(jobId) as { offset: number; size: number; crc: number | null } | undefined;
    const small = data.length <= INLINE_ROW;
    const mergeable = last && last.offset + last.size === start && (last.size <= INLINE_ROW) === small &&
      last.size + data.length <= (small ? INLINE_ROW : MERGE_LIMIT);
    if (mergeable) {
      // A row written before checksums existed (NULL) stays without one.
      this.#stmt.extendChunk.run(data, last.crc === null ? null : crc32(data, last.crc), jobId, last.offset);
    } else {
      this.#insertRows(jobId, start, data);
    }
    row.log_length = start + data.length;
    row.log_chars += countChars(data);
    if (row.log_crc !== null) row.log_crc = crc32(data, row.log_crc);
    if (row.log_chars > this.#retentionChars) this.#trim(jobId, row);
    return { kind: 'appended', start, end: row.log_length };
  }

  /** New rows of at most MAX_ROW bytes holding `data` from offset `start`, each with its checksum. */
  #insertRows(jobId: string, start: number, data: Buffer): void {
    for (let i = 0; i < data.length; i += MAX_ROW) {
      const part = data.subarray(i, i + MAX_ROW);
      this.#stmt.insertChunk.run(jobId, start + i, part, crc32(part));
    }
  }

  async importLog(jobId: string, log: ImportedLog): Promise<void> {
    if (this.#closed) throw new Error('store is closed');
    const row = guard(() =>
      this.#db.transaction(() => {
        const row = this.#stmt.logRow.get(jobId) as LogRow | undefined;
        if (!row) throw new Error(`There is no job ${jobId} to import a log into.`);
        if (row.log_length !== 0) throw new Error(`The log of job ${jobId} is not empty; a log is imported only into an empty one.`);
        this.#insertRows(jobId, log.start, log.data);
        row.log_start = log.start;
        row.log_length = log.start + log.data.length;
        row.log_chars = countChars(log.data);
        row.log_crc = log.crc32;
        if (row.log_chars > this.#retentionChars) this.#trim(jobId, row);
        this.#stmt.saveLogRow.run(row.log_start, row.log_length, row.log_chars, row.log_crc, Date.now(), jobId);
        // A finished job's empty log may have been packed already; the bytes it gets now are packed again below.
        this.#stmt.unpack.run(jobId);
        return row;
      })(),
    );
    this.#search.changed(jobId);
    if (isTerminal(row.status)) this.#packer.schedule(jobId);
    await this.#durable();
  }

  #isStoredRetry(jobId: string, row: LogRow, offset: number, data: Buffer): boolean {
    const end = offset + data.length;
    if (offset > row.log_length || end > row.log_length) return false;
    // Bytes already trimmed cannot be compared; the retained overlap must match.
    const from = Math.max(offset, row.log_start);
    if (from >= end) return true;
    const stored = this.#readRange(jobId, from, end);
    return stored.equals(data.subarray(from - offset));
  }

  #trim(jobId: string, row: LogRow): void {
    let excess = row.log_chars - this.#retentionChars;
    if (row.log_chars === row.log_length - row.log_start) {
      // One byte per character in the whole window (an ASCII log): the cut is arithmetic, and the rows
      // before it need not be read (at 4 MiB appends that read was the largest cost of ingest).
      const start = row.log_start + excess;
      row.log_chars -= excess;
      row.log_start = start;
      this.#stmt.dropChunks.run(jobId, (this.#stmt.chunkAt.get(jobId, start) as { offset: number | null }).offset ?? start);
      return;
    }
    let pos = row.log_start;
    let dropBefore = pos;
    for (;;) {
      const first = (this.#stmt.chunkAt.get(jobId, pos) as { offset: number | null }).offset ?? pos;
      const page = this.#stmt.chunkPage.all(jobId, first, TRIM_PAGE) as StoredChunk[];
      const plan = planTrim(page, pos, excess);
      excess -= plan.charsDropped;
      row.log_chars -= plan.charsDropped;
      pos = plan.start;
      dropBefore = plan.dropBefore;
      if (plan.done || page.length < TRIM_PAGE) break;
    }
    row.log_start = pos;
    this.#stmt.dropChunks.run(jobId, dropBefore);
  }

  /** Synchronous: appends (retries) and the search index read through it; a packed row is inflated here. */
  #readRange(jobId: string, from: number, to: number): Buffer {
    const first = (this.#stmt.chunkAt.get(jobId, from) as { offset: number | null }).offset ?? from;
    const rows = this.#stmt.chunksFrom.all(jobId, first, to) as { offset: number; data: Buffer; size: number | null }[];
    const parts = rows.map((r) => {
      const data = r.size === null ? r.data : gunzipSync(r.data);
      return data.subarray(Math.max(0, from - r.offset), Math.min(data.length, to - r.offset));
    });
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  async logInfo(jobId: string): Promise<LogInfo | null> {
    const row = this.#stmt.logRow.get(jobId) as LogRow | undefined;
    return row ? { start: row.log_start, length: row.log_length } : null;
  }

  async logState(jobId: string): Promise<LogState | null> {
    return (this.#stmt.logState.get(jobId) as LogState | undefined) ?? null;
  }

  async logChecksum(jobId: string): Promise<LogChecksum | null> {
    const row = this.#stmt.logRow.get(jobId) as LogRow | undefined;
    return row ? { length: row.log_length, crc32: row.log_crc } : null;
  }

  async readLog(jobId: string, from: number, maxBytes: number): Promise<LogSlice | null> {
    const row = this.#stmt.logRow.get(jobId) as LogRow | undefined;
    if (!row) return null;
    const start = Math.min(Math.max(from, row.log_start), row.log_length);
    const end = Math.min(row.log_length, start + maxBytes);
    if (start >= end) return { start, end, data: Buffer.alloc(0) };
    if (!row.packed) return { start, end, data: this.#readRange(jobId, start, end) };
    // The rows are read now, in the same step as the log row; inflating them happens off the event loop.
    const first = (this.#stmt.chunkAt.get(jobId, start) as { offset: number | null }).offset ?? start;
    const rows = this.#stmt.packedFrom.all(jobId, first, end) as { offset: number; size: number; data: Buffer }[];
    return { start, end, data: await unpackRange(rows, start, end) };
  }

  async jobCounts(): Promise<JobCount[]> {
    return this.#housekeeping.jobCounts();
  }

  async finishedBefore(finishedBefore: number, limit: number): Promise<string[]> {
    return this.#housekeeping.finishedBefore(finishedBefore, limit);
  }

  async probe(): Promise<void> {
    if (this.#closed) throw new StoreUnavailableError('The log store is closed.');
    guard(() => this.#housekeeping.probe());
  }

  async diskUsage(): Promise<number> {
    return this.#housekeeping.diskUsage();
  }

  async reclaimSpace(maxBytes = RECLAIM_STEP_BYTES): Promise<number> {
    if (this.#closed) return 0;
    return guard(() => reclaimPages(this.#db, maxBytes));
  }

  packFinishedLogs(): Promise<number> {
    return this.#packer.packAll();
  }

  async verify(level: VerifyLevel): Promise<string[]> {
    return verifySqlite(this.#db, level);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#packer.stop();
    if (this.#queue.length) this.#flush();
    await this.#walSync?.close();
    await this.#search.close();
    await this.#thread.close();
    // Pages freed by rewritten rows go back to the filesystem: a cleanly closed file holds no stale free pages.
    try {
      reclaimPages(this.#db, 4 * RECLAIM_STEP_BYTES);
    } catch {
      // A disk that cannot be written now: the pages stay free and are reused.
    }
    this.#db.close();
  }
}
