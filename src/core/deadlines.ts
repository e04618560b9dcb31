import type { Store } from '../store/store.js';
import type { JobRecord, JobStatus, StatusPatch } from './job.js';
import type { JobService } from './service.js';

/** Where an unfinished job goes when its producer went silent. */
const TIMEOUT_TARGET: Record<string, JobStatus> = {
  READY: 'TIMED-OUT',
  RUNNING: 'TIMED-OUT',
  'TIMING-OUT': 'TIMED-OUT',
  ABORTING: 'ABORTED',
};

/** Jobs handled per query and pass, so that a failing store cannot make a pass spin; the next pass takes the rest. */
const PAGE = 500;

export interface DeadlineOptions {
  /** A job with no append, heartbeat (empty append) or status change for this long times out; 0: never. */
  inactivityTimeoutSecs: number;
  /** A graceful abort becomes ABORTED this long after it began. */
  gracefulAbortSecs: number;
}

/**
 * The deadlines of unfinished jobs. Jobs whose producer crashed must not stay RUNNING forever: a job
 * silent for `inactivityTimeoutSecs` becomes TIMED-OUT, which also ends its live streams. A graceful
 * abort becomes ABORTED `gracefulAbortSecs` after it began, unless the producer finished first.
 *
 * Both deadlines live in the store, not in a timer of the node that took the request: every node sweeps
 * (indexed queries every quarter of the shorter period, at least every 30 s and at most every 250 ms), and
 * the status change is compare-and-set, so a deadline is met whichever node dies and is applied (and
 * published) once however many nodes sweep. The first sweep runs at start, so jobs orphaned by a crash
 * of the server itself are found too.
 */
export class JobDeadlines {
  #timer: NodeJS.Timeout | null = null;
  #sweeping: Promise<void> | null = null;

  constructor(
    private readonly service: JobService,
    private readonly store: Store,
    private readonly options: DeadlineOptions,
  ) {}

  start(): void {
    if (this.#timer) return;
    const { inactivityTimeoutSecs, gracefulAbortSecs } = this.options;
    const shortest = inactivityTimeoutSecs > 0 ? Math.min(inactivityTimeoutSecs, gracefulAbortSecs) : gracefulAbortSecs;
    const every = Math.min(30_000, Math.max(250, (shortest * 1000) / 4));
    this.#timer = setInterval(() => void this.sweep(), every);
    this.#timer.unref();
    void this.sweep();
  }

  /** One pass; concurrent calls share it. Resolves when every job found past a deadline was handled. */
  sweep(): Promise<void> {
    this.#sweeping ??= this.#sweepOnce().finally(() => (this.#sweeping = null));
    return this.#sweeping;
  }

  async #sweepOnce(): Promise<void> {
    const { inactivityTimeoutSecs, gracefulAbortSecs } = this.options;
    const now = Date.now();
    for (const job of await this.store.abortingSince(now - gracefulAbortSecs * 1000, PAGE).catch(() => [])) {
      await this.#change(job, { status: 'ABORTED' });
    }
    if (inactivityTimeoutSecs <= 0) return;
    for (const job of await this.store.staleJobs(now - inactivityTimeoutSecs * 1000, PAGE).catch(() => [])) {
      await this.#change(job, {
        status: TIMEOUT_TARGET[job.status] ?? 'TIMED-OUT',
        statusMessage: `No output or heartbeat for ${inactivityTimeoutSecs} s; the producer is gone.`,
      });
    }
  }

  /** Lost a race with the producer or another node, or the store failed: the next pass decides. */
  #change(job: JobRecord, patch: StatusPatch): Promise<unknown> {
    return this.service.setStatus(job, patch).catch(() => undefined);
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#sweeping;
  }
}
