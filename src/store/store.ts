import type { JobKind, JobRecord, JobStatus, StatusPatch } from '../core/job.js';

export interface UserRecord {
  id: string;
  username: string;
  tokenHash: string;
  proxyPassword: string;
  createdAt: number;
}

/** The outcome of one append, decided atomically with the write. */
export type AppendResult =
  | { kind: 'appended'; start: number; end: number }
  /** The same bytes are already stored at that offset: a retry, nothing written. */
  | { kind: 'duplicate'; length: number }
  /** `X-Log-Offset` is neither the current length nor a stored retry. */
  | { kind: 'offset-mismatch'; length: number }
  | { kind: 'terminal'; status: JobStatus }
  | { kind: 'not-found' };

export interface LogInfo {
  /** First retained byte (bytes before it fell out of the retention window). */
  start: number;
  /** Total bytes ever appended; the next append starts here. */
  length: number;
}

/** A log's window with its job's kind and status, read in one step: what a live follower starts from. */
export interface LogState extends LogInfo {
  kind: JobKind;
  status: JobStatus;
}

export interface LogChecksum {
  /** Total bytes ever appended. */
  length: number;
  /** CRC-32 (zlib's) of all `length` bytes, kept as they were appended; null for a log from before it was kept. */
  crc32: number | null;
}

export interface LogSlice {
  /** Absolute offset of the first returned byte (may be after the requested one if it was trimmed). */
  start: number;
  /** Offset just after the last returned byte. */
  end: number;
  data: Buffer;
}

/** One page of a user's jobs of one kind, ordered by `startedAt` (then id, so equal times page stably). */
export interface JobListQuery {
  userId: string;
  kind: JobKind;
  /** Only this actor's jobs. */
  actId?: string;
  /** Only jobs in one of these statuses (all when absent or empty). */
  statuses?: readonly JobStatus[];
  offset: number;
  limit: number;
  desc: boolean;
}

export interface JobPage {
  /** Jobs matching the query, before offset and limit. */
  total: number;
  items: JobRecord[];
}

/**
 * Jobs of one user whose retained log contains `text` (case-insensitive; 3 characters at least, as the
 * trigram indexes need: a shorter text finds nothing), newest first. A running job's last line counts once
 * its newline arrives.
 */
export interface LogSearchQuery {
  userId: string;
  text: string;
  offset: number;
  limit: number;
  /** Matching lines returned per job (the first ones in the log). */
  linesPerJob: number;
}

export interface LogSearchLine {
  /** 1-based line number in the retained log, as the viewer numbers it (`/logs/:id#L<line>`). */
  line: number;
  /** Absolute byte offset of the line's first byte (or of the window's start, for a line cut by retention). */
  offset: number;
  /** The line, ANSI codes and control characters removed, cut at 1,000 characters. */
  text: string;
}

export interface LogSearchHit {
  job: JobRecord;
  lines: LogSearchLine[];
  /** More lines of this log match than `lines` holds. */
  moreLines: boolean;
}

export interface LogSearchPage {
  /** Jobs that match, before offset and limit. */
  total: number;
  hits: LogSearchHit[];
}
export interface JobCount {
  kind: JobKind;
  status: JobStatus;
  count: number;
}

/** A log copied from another store (`buildlog migrate`), with the offsets it had there. */
export interface ImportedLog {
  /** Offset of the first retained byte (the bytes before it fell out of the source's retention window). */
  start: number;
  /** The retained bytes, from `start` to the end of the log. */
  data: Buffer;
  /** CRC-32 of every byte ever appended (the source's logChecksum), so a verified finish still holds; null if unknown. */
  crc32: number | null;
}

/** How much a check looks at: `quick` at every start, `full` for `buildlog check`. */
export type VerifyLevel = 'quick' | 'full';

/**
 * Durable state: users, jobs and their logs. Every implementation passes test/store.contract.ts.
 * Appends are acknowledged (the promise resolves) only once committed.
 */
export interface Store {
  createUser(user: UserRecord): Promise<void>;
  userByTokenHash(tokenHash: string): Promise<UserRecord | null>;
  userById(id: string): Promise<UserRecord | null>;
  userByName(username: string): Promise<UserRecord | null>;
  countUsers(): Promise<number>;
  /** Every user, oldest first. */
  listUsers(): Promise<UserRecord[]>;

  /** Creates a job with an empty log. */
  createJob(job: JobRecord): Promise<void>;
  getJob(id: string): Promise<JobRecord | null>;
  /** Compare-and-set on the status: applies `patch` only while the status is still `from`. */
  updateJobStatus(id: string, from: JobStatus, patch: StatusPatch): Promise<JobRecord | null>;
  /** The newest job of an actor, by kind (for the derived actor object). */
  latestJob(actId: string, kind: 'build' | 'run', userId?: string): Promise<JobRecord | null>;
  /** Unfinished jobs whose last append, heartbeat or status change is older than `activeBefore` (oldest first). */
  staleJobs(activeBefore: number, limit: number): Promise<JobRecord[]>;
  /**
   * ABORTING jobs whose status changed to ABORTING before `changedBefore` (graceful aborts past their grace
   * period), the oldest first. Appends do not move that time: the grace period runs from the abort.
   */
  abortingSince(changedBefore: number, limit: number): Promise<JobRecord[]>;
  /** A page of a user's jobs (the lists of GET /v2/actor-builds, /v2/acts/:actorId/runs, ...). */
  listJobs(query: JobListQuery): Promise<JobPage>;
  /** The distinct build numbers of a user's builds of one actor (for the actor's versions). */
  buildNumbers(userId: string, actId: string): Promise<string[]>;
  /** Removes a job and its whole log; appends to it are `not-found` from then on. False if there was no such job. */
  deleteJob(id: string): Promise<boolean>;
  /**
   * Full-text search over the retained logs. Sees every append acknowledged before the call; an index
   * is the backend's business (kept in step with appends, retention and deletes, rebuilt if missing).
   */
  searchLogs(query: LogSearchQuery): Promise<LogSearchPage>;
  /** How many jobs a user has and how many log bytes they appended over all of them (for quotas). */
  userUsage(userId: string): Promise<{ jobs: number; bytes: number }>;

  /**
   * Appends bytes to a job's log. With `expectedOffset` the chunk must start at the current length, or be
   * stored whole at that offset already (a retry). Refused once the job is terminal. An empty append is
   * a heartbeat: it changes no bytes but counts as activity. Disk faults reject with StoreUnavailableError.
   * `committed` is called with the result once the append is committed and readable, before the promise
   * resolves (which may wait further, for the commit to reach the disk): live followers can be served
   * from then on. If it throws, the append's promise rejects with that error (the bytes stay committed).
   */
  append(jobId: string, data: Buffer, expectedOffset?: number, committed?: (result: AppendResult) => void): Promise<AppendResult>;
  logInfo(jobId: string): Promise<LogInfo | null>;
  /**
   * The log's window and its job's kind and status as of one moment (a status change and the appends
   * before it are seen together): a follower needs nothing else to start or to check where a log ends.
   */
  logState(jobId: string): Promise<LogState | null>;
  /** What a producer's verified finish is compared with (retention does not change it). */
  logChecksum(jobId: string): Promise<LogChecksum | null>;
  /**
   * Fills the still empty log of a job (any status) with a log copied from another store: offsets, length
   * and checksum are the source's, so `Range` reads and `X-Log-Offset` go on where they were. Retention
   * applies as to an append; it counts as activity. Rejects if the job does not exist or its log is not empty.
   */
  importLog(jobId: string, log: ImportedLog): Promise<void>;
  /** Up to `maxBytes` of the retained log from `from` (clamped to the window), never past the end. */
  readLog(jobId: string, from: number, maxBytes: number): Promise<LogSlice | null>;

  /** How many jobs there are of each kind and status (kinds and statuses without jobs left out). */
  jobCounts(): Promise<JobCount[]>;
  /** Ids of terminal jobs that finished before `finishedBefore`, the oldest first (for expiry). */
  finishedBefore(finishedBefore: number, limit: number): Promise<string[]>;
  /** Proves the store can be written now; rejects with StoreUnavailableError naming what fails (for readiness). */
  probe(): Promise<void>;
  /** Bytes the store occupies with live data (space freed by deletions is not counted). */
  diskUsage(): Promise<number>;
  /** Returns space freed by deletions to the filesystem, a bounded step at a time; resolves with the bytes returned. */
  reclaimSpace(maxBytes?: number): Promise<number>;
  /**
   * Finished logs are kept compressed; the store packs them by itself in the background after they finish.
   * This packs the ones not packed yet now and resolves with how many it packed. Reads are the same before
   * and after.
   */
  packFinishedLogs(): Promise<number>;
  /** What is damaged, one line each (empty: nothing found). `full` also reads every stored byte. */
  verify(level: VerifyLevel): Promise<string[]>;

  close(): Promise<void>;
}
