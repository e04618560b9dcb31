import { Transform } from 'node:stream';
import { AnsiFilter } from './ansi-filter.js';
import { SectionMarkerFilter } from './section-markers.js';

/**
 * The stripped view of a log, what a read without `raw=1` returns: section markers give way to their
 * header text, then ANSI escape sequences and control characters other than `\n` and `\t` go. Chunk
 * by chunk, with the same result for any chunking.
 */
export class StrippedView {
  readonly #markers = new SectionMarkerFilter();
  readonly #ansi = new AnsiFilter();

  push(chunk: Buffer): Buffer {
    return this.#ansi.push(this.#markers.push(chunk));
  }

  /**
   * `push` for a chunk that other readers of the log get too (a live append): from a line start, its
   * stripped form is computed once for all of them (see `strippedLines`).
   */
  pushShared(chunk: Buffer): Buffer {
    if (this.atLineStart) {
      const lines = strippedLines(chunk);
      // From a line start to a line start: this view's state is the same after the chunk as before.
      if (lines) return lines;
    }
    return this.push(chunk);
  }

  /** Nothing is pending: the next byte starts a line, outside any escape sequence or section marker. */
  get atLineStart(): boolean {
    return this.#markers.atLineStart && this.#ansi.ground;
  }

  end(): Buffer {
    const body = this.#ansi.push(this.#markers.end());
    const tail = this.#ansi.end();
    return tail.length === 0 ? body : Buffer.concat([body, tail]);
  }
}

/** Stripped forms of shared chunks, by chunk (null: the chunk does not end at a line start). */
const sharedLines = new WeakMap<Buffer, Buffer | null>();

/**
 * The stripped view of `chunk` read from a line start, if it also ends at one (else null), computed once
 * per chunk: the N followers of a log get the same Buffer for each append, and strip it once between them.
 */
export function strippedLines(chunk: Buffer): Buffer | null {
  let lines = sharedLines.get(chunk);
  if (lines === undefined) {
    const view = new StrippedView();
    const out = view.push(chunk);
    lines = view.atLineStart ? out : null;
    sharedLines.set(chunk, lines);
  }
  return lines;
}

/** The stripped view of a whole log (or of a range of it, read as if it started a log). */
export function strippedView(raw: Buffer): Buffer {
  const view = new StrippedView();
  const body = view.push(raw);
  const tail = view.end();
  return tail.length === 0 ? body : Buffer.concat([body, tail]);
}

/**
 * The stripped view as a Transform for response pipelines, after `first` (the truncation notice) if
 * given; unchanged chunks pass through uncopied.
 */
export function strippedViewStream(first: Buffer | null = null): Transform {
  const view = new StrippedView();
  return new Transform({
    construct(callback) {
      if (first) this.push(first);
      callback();
    },
    transform(chunk: Buffer, _enc, callback) {
      const out = view.push(chunk);
      callback(null, out.length ? out : undefined);
    },
    flush(callback) {
      const out = view.end();
      callback(null, out.length ? out : undefined);
    },
  });
}

/**
 * The line a stripped read of a whole log starts with once retention has dropped its head (raw reads
 * and Range reads are unchanged: their offsets must stay the log's).
 */
export function truncationNotice(droppedBytes: number, retentionChars: number): Buffer {
  return Buffer.from(
    `[buildlog] ${droppedBytes} bytes at the start of this log were dropped: it keeps the last ${retentionChars} characters.\n`,
  );
}
