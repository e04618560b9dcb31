/**
 * Text rules shared by the search index and its answers: what a line looks like to a search (ANSI
 * sequences and control characters removed, as the viewer and `raw=0` show it) and how the matches of a
 * stored range become numbered lines. Backend-independent, so every store answers alike.
 */

/** CSI and OSC sequences, other ESC pairs, and C0/DEL controls except tab and newline. */
const NOISE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** The searchable text of some log bytes. */
export function searchableText(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return text.includes('\x1b') || /[\x00-\x08\x0b-\x1f\x7f]/.test(text) ? text.replace(NOISE, '') : text;
}

/** Searches need three characters (the trigram index's unit) and no line break (matches are within a line). */
export function searchTextProblem(text: string): string | null {
  if ([...text].length < 3) return 'must be at least 3 characters long';
  if (/[\r\n]/.test(text)) return 'must not contain a line break';
  if (text.length > 200) return 'must be at most 200 characters long';
  return null;
}

const MAX_LINE_TEXT = 1000;

export interface FoundLine {
  /** Index of the line within the scanned range (0 = the range's first line). */
  index: number;
  offset: number;
  text: string;
}

/**
 * The lines of `bytes` (starting at absolute offset `start`) whose searchable text contains `needle`
 * (lower-cased by the caller), in order, at most `max` (+1, so the caller can tell there are more).
 */
export function matchingLines(bytes: Buffer, start: number, needle: string, max: number): FoundLine[] {
  const found: FoundLine[] = [];
  let lineStart = 0;
  for (let index = 0; lineStart < bytes.length && found.length <= max; index++) {
    const nl = bytes.indexOf(0x0a, lineStart);
    const lineEnd = nl === -1 ? bytes.length : nl;
    const text = searchableText(bytes.subarray(lineStart, lineEnd));
    if (text.toLowerCase().includes(needle)) {
      found.push({ index, offset: start + lineStart, text: text.length > MAX_LINE_TEXT ? `${text.slice(0, MAX_LINE_TEXT)}…` : text });
    }
    lineStart = lineEnd + 1;
  }
  return found;
}

/** Newlines in a byte range. */
export function countNewlines(bytes: Uint8Array): number {
  let n = 0;
  for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) n++;
  return n;
}
