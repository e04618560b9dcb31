/** Exponential back-off with jitter: initial, 2×, 4× … up to `maxMs`; `reset()` after a success. */
export class Backoff {
  #attempt = 0;

  constructor(
    readonly initialMs = 250,
    readonly maxMs = 5000,
  ) {}

  /** The delay before the next attempt. */
  next(): number {
    const base = Math.min(this.initialMs * 2 ** this.#attempt, this.maxMs);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    // ±20% so that many clients of a restarted server do not come back in lockstep.
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  get attempts(): number {
    return this.#attempt;
  }

  reset(): void {
    this.#attempt = 0;
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
