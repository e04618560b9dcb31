import { GITLAB_MARKER, MarkerFilter } from '../../web/marker-filter.js';

export { GITLAB_MARKER };

/**
 * Removes the syntax of section markers from the stripped view of a log, as the raw bytes stream by.
 * The filter itself is web/marker-filter.js, shared with the log viewer (its header says what goes);
 * this is its face for Buffers.
 */
export class SectionMarkerFilter {
  readonly #text = new MarkerFilter();

  push(chunk: Buffer): Buffer {
    // Fast path, most appends: whole lines with nothing that could be a marker, found without making
    // a string of the bytes.
    if (this.#text.idle && chunk[chunk.length - 1] === 0x0a && chunk.indexOf('::') === -1 && chunk.indexOf('section_') === -1) {
      this.#text.passedLines();
      return chunk;
    }
    return Buffer.from(this.#text.push(chunk.toString('latin1')), 'latin1');
  }

  /** Nothing is held and the next byte starts a line. */
  get atLineStart(): boolean {
    return this.#text.atLineStart;
  }

  end(): Buffer {
    return Buffer.from(this.#text.end(), 'latin1');
  }
}

/** The stripped view's marker removal over a whole log at once. */
export function stripSectionMarkers(raw: Buffer): Buffer {
  const filter = new SectionMarkerFilter();
  const head = filter.push(raw);
  const tail = filter.end();
  return tail.length ? Buffer.concat([head, tail]) : head;
}
