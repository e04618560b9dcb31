import { Readable } from 'node:stream';
import type { Store } from '../store/store.js';

/**
 * The stored bytes [from, until) of a log as a stream, page by page: a read of a log too large for the
 * finished-log cache, or of a running log without `stream`. Nothing here listens for appends (that is
 * the live follower's job); the bytes were durable before the response began.
 */
export class StoredLogReader extends Readable {
  #next: number;

  constructor(
    private readonly store: Store,
    private readonly jobId: string,
    from: number,
    private readonly until: number,
    private readonly pageBytes = 256 * 1024,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.#next = from;
  }

  override _read(): void {
    if (this.#next >= this.until) return void this.push(null);
    this.store.readLog(this.jobId, this.#next, Math.min(this.pageBytes, this.until - this.#next)).then(
      (slice) => {
        if (!slice || slice.start > this.#next || slice.end <= this.#next) {
          // Trimmed by the retention window (a running log) or deleted meanwhile: fail rather than skip bytes silently.
          return void this.destroy(new Error(`log ${this.jobId}: bytes from ${this.#next} left the store before they were sent`));
        }
        this.#next = slice.end;
        this.push(slice.data);
      },
      (err: Error) => this.destroy(err),
    );
  }
}
