import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { JobKind } from '../core/job.js';
import { strippedView } from '../text/stripped-view.js';

export type LogView = 'raw' | 'text';
export type Encoding = 'gzip' | 'br';

/** One-shot compression of a whole body, off the event loop (zlib's thread pool). */
export const compress = {
  gzip: promisify(gzip),
  br: (data: Buffer) => promisify(brotliCompress)(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 6 } }),
};

/**
 * A terminal job's log as it will stay forever (appends to a terminal job are refused): the bytes of each
 * view computed once, and each compressed form once, on the first request that asks for it. Requests are
 * then answered from these buffers without touching the store or running the ANSI filter again.
 */
export class FinishedLog {
  /**
   * The stripped view of the whole log, after the truncation notice if there is one; the very `raw`
   * buffer when stripping changes nothing (most build output).
   */
  readonly text: Buffer;
  readonly #compressed = new Map<string, Buffer>();
  readonly #pending = new Map<string, Promise<Buffer>>();
  #size: number;

  constructor(
    readonly id: string,
    readonly kind: JobKind,
    readonly userId: string,
    /** First retained byte offset. */
    readonly start: number,
    readonly raw: Buffer,
    /** The line a stripped read of the whole log starts with (retention dropped its head), if any. */
    notice: Buffer | null,
    /** Told whenever the entry grows (a compressed form was added), so the cache can account for it. */
    private readonly onGrow: (entry: FinishedLog, bytes: number) => void = () => undefined,
  ) {
    const text = strippedView(raw);
    this.text = notice ? Buffer.concat([notice, text]) : text.equals(raw) ? raw : text;
    this.#size = raw.length + (this.text === raw ? 0 : this.text.length);
  }

  /** Offset just after the last byte. */
  get length(): number {
    return this.start + this.raw.length;
  }

  /** Bytes this entry holds. */
  get size(): number {
    return this.#size;
  }

  view(view: LogView): Buffer {
    return view === 'raw' ? this.raw : this.text;
  }

  /** The compressed form of a view, if it was computed already. */
  compressedNow(view: LogView, encoding: Encoding): Buffer | undefined {
    return this.#compressed.get(`${view}-${encoding}`);
  }

  /** The compressed form of a view, computed once (concurrent first requests share the work). */
  compressed(view: LogView, encoding: Encoding): Promise<Buffer> {
    const key = `${view}-${encoding}`;
    const done = this.#compressed.get(key);
    if (done) return Promise.resolve(done);
    let pending = this.#pending.get(key);
    if (!pending) {
      // An identical view compresses to identical bytes: raw and text share one result then.
      const alias = this.text === this.raw ? `${view === 'raw' ? 'text' : 'raw'}-${encoding}` : undefined;
      const shared = alias ? this.#pending.get(alias) : undefined;
      pending = (shared ?? compress[encoding](this.view(view))).then((data) => {
        this.#pending.delete(key);
        if (!this.#compressed.has(key)) {
          this.#compressed.set(key, data);
          const counted = alias && this.#compressed.get(alias) === data;
          if (!counted) {
            this.#size += data.length;
            this.onGrow(this, data.length);
          }
        }
        return data;
      });
      this.#pending.set(key, pending);
    }
    return pending;
  }
}
