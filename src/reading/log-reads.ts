import { isTerminal, type JobRecord } from '../core/job.js';
import type { LiveBus } from '../live/bus.js';
import { LogFollower } from '../live/follower.js';
import type { LogInfo, Store } from '../store/store.js';
import { truncationNotice } from '../text/stripped-view.js';
import { FinishedLogCache } from './finished-cache.js';
import { FinishedLog, type LogView } from './finished-log.js';
import { StoredLogReader } from './stored-reader.js';

export interface LogReadsOptions {
  /** Bytes the finished-log cache may hold (raw, stripped and compressed forms together). */
  cacheBytes: number;
  /** Characters each log keeps: named by the notice that starts a stripped read of a truncated log. */
  retentionChars: number;
  /** Told, for each live append written to a follower, the seconds since its commit (the fan-out metric). */
  onLiveWrite?: (delaySecs: number) => void;
}

/**
 * The read side of logs, for the API: finished logs from a memory-bounded cache of their final bytes,
 * stored bytes as a stream, and live followers. The API never reaches into the store itself.
 */
export class LogReads {
  readonly #cache: FinishedLogCache;
  /** A log is cached only if it is at most this large, so one log cannot take the whole budget. */
  readonly #maxEntry: number;
  readonly #loading = new Map<string, Promise<FinishedLog | null>>();

  constructor(
    private readonly store: Store,
    private readonly bus: LiveBus,
    private readonly options: LogReadsOptions,
  ) {
    this.#cache = new FinishedLogCache(options.cacheBytes);
    this.#maxEntry = Math.floor(options.cacheBytes / 4);
  }

  info(id: string): Promise<LogInfo | null> {
    return this.store.logInfo(id);
  }

  /** A finished log already in the cache (no I/O: the hot path of polling clients). */
  cached(id: string): FinishedLog | undefined {
    return this.#cache.get(id);
  }

  /** A terminal job's log with its final bytes, or null when it is too large to hold (stream it instead). */
  finished(job: JobRecord): Promise<FinishedLog | null> {
    if (!isTerminal(job.status)) throw new Error(`job ${job.id} is not finished`);
    const hit = this.#cache.get(job.id);
    if (hit) return Promise.resolve(hit);
    let loading = this.#loading.get(job.id);
    if (!loading) {
      loading = this.#load(job).finally(() => this.#loading.delete(job.id));
      this.#loading.set(job.id, loading);
    }
    return loading;
  }

  async #load(job: JobRecord): Promise<FinishedLog | null> {
    const info = await this.store.logInfo(job.id);
    if (!info || info.length - info.start > this.#maxEntry) return null;
    const slice = await this.store.readLog(job.id, info.start, info.length - info.start);
    if (!slice || slice.start !== info.start || slice.end !== info.length) return null;
    const log = new FinishedLog(job.id, job.kind, job.userId, info.start, slice.data, this.notice(info.start), (entry, bytes) =>
      this.#cache.grew(entry, bytes),
    );
    this.#cache.set(log);
    return log;
  }

  /** What a stripped read of the whole log starts with: a line saying what retention dropped, if anything. */
  notice(start: number): Buffer | null {
    return start > 0 ? truncationNotice(start, this.options.retentionChars) : null;
  }

  /** Drops a log from the cache; whatever removes a job's log must call it. */
  forget(id: string): void {
    this.#cache.delete(id);
  }

  /** Stored bytes [from, until) as a stream (no live appends). */
  stored(id: string, from: number, until: number): StoredLogReader {
    return new StoredLogReader(this.store, id, from, until);
  }

  /**
   * A live follower: stored bytes from `from`, then every append, until the job is terminal (or `until`),
   * in the `view` asked for. `wholeLog`: a stripped one starts with the truncation notice, if the log has one.
   */
  follow(id: string, from: number, until: number | undefined, view: LogView, wholeLog: boolean): LogFollower {
    const notice = wholeLog ? (start: number) => this.notice(start) : undefined;
    return new LogFollower({ store: this.store, bus: this.bus, jobId: id, from, follow: true, until, view, notice, onLiveWrite: this.options.onLiveWrite });
  }
}
