import type { Store } from '../store/store.js';

/** Jobs looked up and deleted per batch; between two deletions appends and reads get their turn. */
const BATCH = 100;
/** At most this many batches per pass; the next pass (soon) takes the rest. */
const MAX_BATCHES = 20;

export interface ExpiryOptions {
  store: Store;
  /** Deletes one job with its log, ending its followers (the same path as DELETE /v2/actor-builds/:id). */
  remove(jobId: string): Promise<void>;
  /** Told each job expired (the `buildlog_expired_jobs_total` counter). */
  onExpired?(): void;
}

/** Ids of the jobs finished more than `olderThanSecs` ago, the oldest first, at most `limit`. */
export function expiredJobs(store: Store, olderThanSecs: number, limit: number, now = Date.now()): Promise<string[]> {
  return store.finishedBefore(now - olderThanSecs * 1000, limit);
}

/**
 * Deletes the jobs finished longer ago than `--expire-after`, with their logs, in the background: one
 * indexed lookup per batch, one short transaction per job, a yield to the event loop between jobs, and
 * the freed space handed back to the filesystem after each batch. Unfinished jobs never expire (only
 * terminal jobs have a finish time).
 */
export class Expirer {
  #timer: NodeJS.Timeout | null = null;
  #pass: Promise<number> | null = null;
  #stopped = false;

  constructor(
    private readonly options: ExpiryOptions,
    private readonly expireAfterSecs: number,
  ) {}

  /** Sweeps now and then every quarter of the expiry age (between 1 s and 1 min). */
  start(): void {
    if (this.expireAfterSecs <= 0 || this.#timer) return;
    const every = Math.min(60_000, Math.max(1000, (this.expireAfterSecs * 1000) / 4));
    this.#timer = setInterval(() => void this.sweep().catch(() => undefined), every);
    this.#timer.unref();
    void this.sweep().catch(() => undefined);
  }

  /** One pass (concurrent calls share it); resolves with how many jobs it deleted. */
  sweep(): Promise<number> {
    this.#pass ??= this.#sweepOnce().finally(() => (this.#pass = null));
    return this.#pass;
  }

  async #sweepOnce(): Promise<number> {
    const { store, remove, onExpired } = this.options;
    let deleted = 0;
    for (let batch = 0; batch < MAX_BATCHES && !this.#stopped; batch++) {
      const ids = await expiredJobs(store, this.expireAfterSecs, BATCH);
      for (const id of ids) {
        if (this.#stopped) break;
        await remove(id);
        deleted++;
        onExpired?.();
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (ids.length) await store.reclaimSpace();
      if (ids.length < BATCH) break;
    }
    return deleted;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#pass?.catch(() => undefined);
  }
}
