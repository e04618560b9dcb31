import { eventTime, type LiveBus } from '../live/bus.js';
import { LogReads } from '../reading/log-reads.js';
import type { JobListQuery, JobPage, LogSearchPage, LogSearchQuery, Store, UserRecord } from '../store/store.js';
import { SectionTracker, type Section } from '../text/sections.js';
import { BoundedMap } from './bounded-map.js';
import { refuse } from './errors.js';
import { newId } from './ids.js';
import {
  assertTransition,
  isTerminal,
  type JobKind,
  type JobRecord,
  type JobStatus,
  type StatusPatch,
} from './job.js';
import { DEFAULT_RETENTION_CHARS } from './retention.js';

/** Longest `waitForFinish` we hold a request for, as Apify does. */
export const MAX_WAIT_SECS = 60;
/** Users whose tokens are kept resolved in memory (a few hundred bytes each). */
const MAX_KNOWN_USERS = 10_000;
/** Page size of the reads that look for sections. */
const SECTION_READ_BYTES = 1 << 20;

export interface NewJobInput {
  kind: JobKind;
  user: UserRecord;
  actId?: string;
  buildId?: string | null;
  buildNumber?: string | null;
  origin?: string;
  meta?: Record<string, unknown>;
  options?: Record<string, unknown>;
  status?: JobStatus;
}

export interface ServiceOptions {
  /** Quotas; 0 = none. */
  maxJobsPerUser: number;
  maxBytesPerUser: number;
  /** Bytes of finished logs kept in memory, ready to serve. */
  readCacheBytes?: number;
  /** Characters each log keeps (for the notice that starts a stripped read of a truncated log). */
  retentionChars?: number;
}

export const DEFAULT_READ_CACHE_BYTES = 64 * 1024 * 1024;

/** What the operations side hooks into (metrics, the disk guard); every hook is optional. */
export interface ServiceHooks {
  /** Throws to refuse an append of `bytes` before anything is written. */
  beforeAppend?(bytes: number): void;
  /** Told the size of every append that committed bytes. */
  appended?(bytes: number): void;
  /** Told, for each live append written to a follower, the seconds since its commit. */
  liveWrite?(delaySecs: number): void;
}

export interface AppendOutcome {
  start: number;
  end: number;
  duplicate: boolean;
}

/**
 * The job and log operations the API needs, over any Store and LiveBus: every committed change is
 * published so that followers on every node hear about it.
 */
export class JobService {
  /** Aborted on close, so held `waitForFinish` requests answer at once. */
  readonly #closing = new AbortController();
  /** Users found by token hash (see `userByTokenHash`), the oldest dropped first past MAX_KNOWN_USERS. */
  readonly #users = new BoundedMap<string, UserRecord>(MAX_KNOWN_USERS);
  /** Reading logs: finished ones from memory, stored bytes, live followers. */
  readonly reads: LogReads;

  constructor(
    readonly store: Store,
    readonly bus: LiveBus,
    readonly options: ServiceOptions = { maxJobsPerUser: 0, maxBytesPerUser: 0 },
    private readonly hooks: ServiceHooks = {},
  ) {
    this.reads = new LogReads(store, bus, {
      cacheBytes: options.readCacheBytes ?? DEFAULT_READ_CACHE_BYTES,
      retentionChars: options.retentionChars ?? DEFAULT_RETENTION_CHARS,
      onLiveWrite: hooks.liveWrite,
    });
  }

  /** The job, if it exists and is of `kind`. */
  async get(id: string, kind: JobKind | 'any'): Promise<JobRecord> {
    const job = await this.store.getJob(id);
    if (!job || (kind !== 'any' && job.kind !== kind)) throw refuse({ reason: 'job-not-found', kind });
    return job;
  }

  /** The job, if `user` may write to it. */
  async getOwned(id: string, kind: JobKind | 'any', user: UserRecord): Promise<JobRecord> {
    const job = await this.get(id, kind);
    if (job.userId !== user.id) throw refuse({ reason: 'not-owner' });
    return job;
  }

  async create(input: NewJobInput): Promise<JobRecord> {
    const { maxJobsPerUser } = this.options;
    if (maxJobsPerUser > 0 && (await this.store.userUsage(input.user.id)).jobs >= maxJobsPerUser) {
      throw refuse({ reason: 'job-quota', username: input.user.username, limit: maxJobsPerUser });
    }
    const now = Date.now();
    const status = input.status ?? 'RUNNING';
    const actId = input.actId ?? 'default';
    // A run runs a build: without one named, it is the actor's latest build (as Apify's default `latest` tag).
    const build = input.kind === 'run' && !input.buildId ? await this.store.latestJob(actId, 'build', input.user.id) : null;
    const job: JobRecord = {
      id: newId(),
      kind: input.kind,
      userId: input.user.id,
      actId,
      buildId: input.buildId ?? build?.id ?? null,
      buildNumber: input.buildNumber ?? build?.buildNumber ?? null,
      status,
      statusMessage: null,
      exitCode: null,
      origin: input.origin ?? 'API',
      meta: input.meta ?? {},
      options: input.options ?? {},
      startedAt: now,
      finishedAt: isTerminal(status) ? now : null,
    };
    await this.store.createJob(job);
    return job;
  }

  /** How many bytes retention dropped from the head of a job's log (its first retained offset). */
  async logStart(id: string): Promise<number> {
    return (await this.store.logInfo(id))?.start ?? 0;
  }

  /** The sections found in the retained part of a job's log so far (the raw bytes, read in pages). */
  async sections(job: JobRecord): Promise<Section[]> {
    const info = (await this.store.logInfo(job.id))!;
    const tracker = new SectionTracker(info.start);
    for await (const data of this.#pages(job.id, info.start, info.length)) tracker.push(data);
    return tracker.sections();
  }

  /** One section's raw bytes (to the end of the log while it is open); null if the log has no such section. */
  async sectionBytes(job: JobRecord, name: string): Promise<{ section: Section; data: Buffer } | null> {
    const section = (await this.sections(job)).find((s) => s.name === name);
    if (!section) return null;
    const end = section.end ?? (await this.store.logInfo(job.id))!.length;
    const parts: Buffer[] = [];
    for await (const data of this.#pages(job.id, section.start, end)) parts.push(data);
    return { section, data: Buffer.concat(parts) };
  }

  async *#pages(id: string, from: number, to: number): AsyncGenerator<Buffer> {
    for (let pos = from; pos < to; ) {
      const slice = (await this.store.readLog(id, pos, Math.min(SECTION_READ_BYTES, to - pos)))!;
      if (slice.end === slice.start) return;
      yield slice.data;
      pos = slice.end;
    }
  }

  /**
   * A producer's terminal status with proof that the log is whole: `length` bytes appended in all, with
   * CRC-32 `crc32`. If the store received something else, a length or CRC mismatch (with the length it has) and
   * the status stays, so the producer can send what is missing and try again. A log older than the CRC
   * (from before the upgrade that added it) is checked on its length alone.
   */
  async finishVerified(job: JobRecord, patch: StatusPatch, proof: { length?: number; crc32?: number }): Promise<JobRecord> {
    if (isTerminal(patch.status) && !isTerminal(job.status) && (proof.length !== undefined || proof.crc32 !== undefined)) {
      const stored = (await this.store.logChecksum(job.id))!;
      if (proof.length !== undefined && proof.length !== stored.length) {
        throw refuse({ reason: 'length-mismatch', length: stored.length, sent: proof.length });
      }
      if (proof.crc32 !== undefined && stored.crc32 !== null && proof.crc32 !== stored.crc32) {
        throw refuse({ reason: 'crc-mismatch', length: stored.length, crc32: stored.crc32, sent: proof.crc32 });
      }
    }
    return this.setStatus(job, patch);
  }

  /**
   * Moves a job to `patch.status` if the lifecycle allows it. Setting the status it already has is a
   * no-op (so a retried PUT succeeds). Lost races with another writer are retried against the new status.
   */
  async setStatus(job: JobRecord, patch: StatusPatch): Promise<JobRecord> {
    let current = job;
    for (;;) {
      if (current.status === patch.status) {
        if (patch.statusMessage === undefined || patch.statusMessage === current.statusMessage) return current;
        if (isTerminal(current.status)) return current;
      } else {
        assertTransition(current.status, patch.status);
      }
      const finishedAt = isTerminal(patch.status) ? Date.now() : undefined;
      const updated = await this.store.updateJobStatus(current.id, current.status, { finishedAt, ...patch });
      if (updated) {
        if (updated.status !== current.status) {
          this.bus.publish({ type: 'status', jobId: updated.id, status: updated.status });
        }
        return updated;
      }
      current = await this.get(current.id, 'any');
    }
  }

  /**
   * Apify's abort: a terminal job is returned unchanged; otherwise it becomes ABORTED, or with
   * `gracefully` ABORTING first, and ABORTED once the producer finishes or the grace period ends (which
   * JobDeadlines sees to on every node, so it ends even if this one dies meanwhile).
   */
  async abort(job: JobRecord, gracefully: boolean): Promise<JobRecord> {
    if (isTerminal(job.status) || (gracefully && job.status === 'ABORTING')) return job;
    if (!gracefully || job.status === 'TIMING-OUT') {
      const target = job.status === 'TIMING-OUT' ? 'TIMED-OUT' : 'ABORTED';
      return this.setStatus(job, { status: target, statusMessage: job.statusMessage ?? 'Aborted' });
    }
    return this.setStatus(job, { status: 'ABORTING' });
  }

  /** Holds until the job is terminal or `secs` pass (clamped to 0–60), then returns it as it is. */
  async waitForFinish(job: JobRecord, secs: number, signal?: AbortSignal): Promise<JobRecord> {
    const wait = Math.min(Math.max(secs, 0), MAX_WAIT_SECS) * 1000;
    if (isTerminal(job.status) || wait === 0 || this.#closing.signal.aborted) return job;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', done);
        this.#closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const recheck = () =>
        this.store
          .getJob(job.id)
          .then((j) => (!j || isTerminal(j.status)) && done())
          .catch(done);
      const unsubscribe = this.bus.subscribe(job.id, (e) => {
        if ((e.type === 'status' && isTerminal(e.status)) || e.type === 'deleted') done();
        else if (e.type === 'resync') void recheck();
      });
      const timer = setTimeout(done, wait);
      signal?.addEventListener('abort', done);
      this.#closing.signal.addEventListener('abort', done);
      // The status may have changed between the caller's read and the subscription.
      void recheck();
    });
    return this.get(job.id, 'any');
  }

  /** A page of a user's jobs (the Apify lists). */
  listJobs(query: JobListQuery): Promise<JobPage> {
    return this.store.listJobs(query);
  }

  /** The newest job of an actor, by kind, optionally of one user. */
  latestJob(actId: string, kind: JobKind, userId?: string): Promise<JobRecord | null> {
    return this.store.latestJob(actId, kind, userId);
  }

  /** The build numbers of a user's builds of an actor. */
  buildNumbers(userId: string, actId: string): Promise<string[]> {
    return this.store.buildNumbers(userId, actId);
  }

  searchLogs(query: LogSearchQuery): Promise<LogSearchPage> {
    return this.store.searchLogs(query);
  }

  userByName(username: string): Promise<UserRecord | null> {
    return this.store.userByName(username);
  }

  userById(id: string): Promise<UserRecord | null> {
    return this.store.userById(id);
  }

  /**
   * The user owning a token, by the token's hash (request authentication). Found users are kept: a user
   * and its token never change and are never deleted (no API or command does either), so an entry cannot
   * go stale; a token not found is looked up again each time, since its user may be added meanwhile
   * (`buildlog users add`, another node). A store read per request was a tenth of the server's CPU in the
   * fan-out row (a read transaction in WAL mode takes the -shm locks). Were tokens ever revoked, this
   * cache would have to be told, on every node.
   */
  async userByTokenHash(tokenHash: string): Promise<UserRecord | null> {
    const known = this.#users.get(tokenHash);
    if (known) return known;
    const user = await this.store.userByTokenHash(tokenHash);
    if (user) this.#users.set(tokenHash, user);
    return user;
  }

  /** Removes a job and its log; its followers end and its waiters answer. */
  async delete(job: JobRecord): Promise<void> {
    const deleted = await this.store.deleteJob(job.id);
    // After the delete: a finished log loaded from the store just before it is not served from memory either.
    this.reads.forget(job.id);
    if (deleted) this.bus.publish({ type: 'deleted', jobId: job.id });
  }

  /** Appends bytes to a job's log and tells every follower. */
  async append(job: Pick<JobRecord, 'id' | 'userId'>, data: Buffer, expectedOffset?: number): Promise<AppendOutcome> {
    const { maxBytesPerUser } = this.options;
    if (data.length > 0) this.hooks.beforeAppend?.(data.length);
    // Checked before the append, so concurrent appends may overshoot by their own size at most.
    if (maxBytesPerUser > 0 && (await this.store.userUsage(job.userId)).bytes + data.length > maxBytesPerUser) {
      throw refuse({ reason: 'byte-quota', limit: maxBytesPerUser });
    }
    // Followers get the bytes once they are committed, while the store may still be flushing them to disk.
    const result = await this.store.append(job.id, data, expectedOffset, (r) => {
      if (r.kind === 'appended' && r.end > r.start) {
        this.bus.publish({ type: 'append', jobId: job.id, start: r.start, end: r.end, data, at: eventTime() });
        this.hooks.appended?.(data.length);
      }
    });
    switch (result.kind) {
      case 'appended':
        return { start: result.start, end: result.end, duplicate: false };
      case 'duplicate':
        return { start: expectedOffset!, end: result.length, duplicate: true };
      case 'offset-mismatch':
        throw refuse({ reason: 'offset-mismatch', offset: expectedOffset!, length: result.length });
      case 'terminal':
        throw refuse({ reason: 'job-finished', status: result.status });
      case 'not-found':
        throw refuse({ reason: 'job-not-found', kind: 'any' });
    }
  }

  close(): void {
    this.#closing.abort();
  }
}
