import { insufficientStorage } from '../api/api-error.js';
import type { Store } from '../store/store.js';

/** How often the store's usage is measured; an append costs a boolean test, never a measurement. */
const CHECK_EVERY_MS = 1000;

/**
 * `--max-disk-usage`: past the limit, appends are refused with 507 insufficient-storage until expiry or
 * deletion frees room (reads, job creation, status changes and heartbeats go on). The usage is measured in
 * the background, so a burst may overshoot the limit by what arrives within one interval.
 */
export class DiskGuard {
  #usage = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly store: Store,
    readonly limitBytes: number,
  ) {}

  get usage(): number {
    return this.#usage;
  }

  get full(): boolean {
    return this.limitBytes > 0 && this.#usage >= this.limitBytes;
  }

  /** Measures once now (so the first appends are judged right), then every second. */
  async start(): Promise<void> {
    if (this.limitBytes <= 0 || this.#timer) return;
    await this.measure();
    this.#timer = setInterval(() => void this.measure(), CHECK_EVERY_MS);
    this.#timer.unref();
  }

  async measure(): Promise<void> {
    try {
      this.#usage = await this.store.diskUsage();
    } catch {
      // Keeps the last figure; a store that cannot be read will refuse appends by itself.
    }
  }

  /** The service's `beforeAppend` hook. */
  check(): void {
    if (this.full) {
      throw insufficientStorage(
        `The log store uses ${this.#usage} bytes, over its limit of ${this.limitBytes} (--max-disk-usage); appends resume once old jobs expire or are deleted.`,
      );
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }
}
