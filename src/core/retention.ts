/**
 * The retention window: a log keeps only its trailing N characters (Apify keeps 5,000,000). Offsets stay
 * absolute byte offsets; characters are counted as UTF-8 sequence starts, so a cut never splits one.
 */

import { isAscii } from 'node:buffer';

export const DEFAULT_RETENTION_CHARS = 5_000_000;

const isContinuation = (byte: number) => (byte & 0xc0) === 0x80;

/** Characters in a byte range: every byte that is not a UTF-8 continuation byte starts one. */
export function countChars(data: Uint8Array): number {
  // Most logs are ASCII: Node checks that with SIMD, far faster than the byte loop below.
  if (isAscii(data)) return data.length;
  let n = 0;
  for (let i = 0; i < data.length; i++) if (!isContinuation(data[i]!)) n++;
  return n;
}

export interface StoredChunk {
  offset: number;
  data: Uint8Array;
}

export interface TrimPlan {
  /** The new first retained byte offset. */
  start: number;
  /** Chunks wholly before `start`, to delete. */
  dropBefore: number;
  /** Characters removed from the window. */
  charsDropped: number;
  /** False when the chunks ran out before the cut was found: call again with the following chunks. */
  done: boolean;
}

/**
 * Where the window must begin to drop `excessChars` characters from the front. `chunks` are the oldest
 * stored chunks in offset order, starting with the one holding `start`; the caller passes enough of them
 * to cover the excess (more is harmless). Bytes that continue a dropped character are dropped too.
 */
export function planTrim(chunks: StoredChunk[], start: number, excessChars: number): TrimPlan {
  let charsDropped = 0;
  let pos = start;
  // The chunk holding `start` may begin before it (an earlier cut fell inside it): it is not "wholly before".
  let dropBefore = Math.min(start, chunks[0]?.offset ?? start);
  for (const chunk of chunks) {
    const end = chunk.offset + chunk.data.length;
    if (end <= pos) {
      dropBefore = end;
      continue;
    }
    let i = pos - chunk.offset;
    const left = excessChars - charsDropped;
    if (isAscii(chunk.data.subarray(i))) {
      // One byte per character: jump instead of scanning (the common case, and the hot path of ingest).
      const take = Math.min(left, chunk.data.length - i);
      charsDropped += take;
      i += take;
      if (i < chunk.data.length) return { start: chunk.offset + i, dropBefore, charsDropped, done: true };
      pos = end;
      dropBefore = end;
      continue;
    }
    for (; i < chunk.data.length; i++) {
      const b = chunk.data[i]!;
      if (!isContinuation(b)) {
        if (charsDropped === excessChars) break;
        charsDropped++;
      }
    }
    pos = chunk.offset + i;
    if (i < chunk.data.length) return { start: pos, dropBefore, charsDropped, done: true };
    dropBefore = end;
  }
  return { start: pos, dropBefore, charsDropped, done: false };
}
