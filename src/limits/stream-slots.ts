import type { SharedCounts } from './shared-counts.js';
import { rateLimitExceeded } from '../api/api-error.js';

/**
 * A cap on the streaming responses one client holds open at once: streams are long-lived, so the
 * request rate limits alone do not bound them.
 */
export class StreamSlots {
  readonly #open = new Map<string, number>();

  /** With `shared`, the cap holds across the nodes of an installation (the others' streams as of their last sync). */
  constructor(
    readonly maxPerClient: number,
    private readonly shared?: SharedCounts,
  ) {}

  /** Takes a slot for `key` or throws 429; returns the function that gives it back (idempotent). */
  acquire(key: string): () => void {
    if (this.count(key) >= this.maxPerClient) {
      throw rateLimitExceeded(1, `Too many concurrent log streams (limit ${this.maxPerClient} per client).`);
    }
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
    this.shared?.adjust(key, 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(key) ?? 1) - 1;
      if (left > 0) this.#open.set(key, left);
      else this.#open.delete(key);
      this.shared?.adjust(key, -1);
    };
  }

  /** Open streams of `key` (on every node, when shared). */
  count(key: string): number {
    return this.shared ? this.shared.gauge(key) : (this.#open.get(key) ?? 0);
  }
}
