import { rateLimitExceeded } from '../core/errors.js';

/**
 * A cap on the streaming responses one client holds open at once: streams are long-lived, so the
 * request rate limits alone do not bound them.
 */
export class StreamSlots {
  readonly #open = new Map<string, number>();

  constructor(readonly maxPerClient: number) {}

  /** Takes a slot for `key` or throws 429; returns the function that gives it back (idempotent). */
  acquire(key: string): () => void {
    const n = this.#open.get(key) ?? 0;
    if (n >= this.maxPerClient) {
      throw rateLimitExceeded(1, `Too many concurrent log streams (limit ${this.maxPerClient} per client).`);
    }
    this.#open.set(key, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
    };
  }

  /** Open streams of `key` (for tests and metrics). */
  count(key: string): number {
    return this.#open.get(key) ?? 0;
  }
}
