import type { Store } from '../store/store.js';
import type { JobStatus } from './job.js';
import type { JobService } from './service.js';

/** Where an unfinished job goes when its producer went silent. */
const TIMEOUT_TARGET: Record<string, JobStatus> = {
  READY: 'TIMED-OUT',
  RUNNING: 'TIMED-OUT',
  'TIMING-OUT': 'TIMED-OUT',
  ABORTING: 'ABORTED',
};

/**
 * Jobs whose producer crashed must not stay RUNNING forever: a job with no append, heartbeat (empty
 * append) or status change for `timeoutSecs` becomes TIMED-OUT, which also ends its live streams.
 *
 * This is housekeeping, not fan-out: one indexed query every `timeoutSecs / 4` (at most every 30 s), on
 * every node (the status change is compare-and-set, so nodes cannot both win). The first sweep runs at
 * start, so jobs orphaned by a crash of the server itself are found too.
 */
export class InactivityReaper {
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(
    private readonly service: JobService,
    private readonly store: Store,
    private readonly timeoutSecs: number,
  ) {}

  start(): void {
    if (this.timeoutSecs <= 0 || this.#timer) return;
    const every = Math.min(30_000, Math.max(250, (this.timeoutSecs * 1000) / 4));
    this.#timer = setInterval(() => void this.sweep(), every);
    this.#timer.unref();
    void this.sweep();
  }

  /** One pass; concurrent calls share it. Resolves when every stale job found was handled. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = null));
    return this.#sweeping;
  }

  /** At most one page per pass, so a failing store cannot make it spin; the next pass takes the rest. */
  async #sweepOnce(): Promise<void> {
    const stale = await this.store.staleJobs(Date.now() - this.timeoutSecs * 1000, 500);
    for (const job of stale) {
      await this.service
        .setStatus(job, {
          status: TIMEOUT_TARGET[job.status] ?? 'TIMED-OUT',
          statusMessage: `No output or heartbeat for ${this.timeoutSecs} s; the producer is gone.`,
        })
        // Lost a race with the producer or another node, or the store failed: the next pass decides.
        .catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }
}
