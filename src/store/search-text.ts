/**
 * Text rules shared by the search indexes and their answers: what a line looks like to a search (ANSI
 * sequences and control characters removed, as the viewer and `raw=0` show it), how a log is cut into
 * indexed blocks, and how the matches of indexed blocks become numbered lines. Backend-independent, so
 * every store answers alike.
 */
import type { LogSearchLine } from './store.js';

/** CSI and OSC sequences, other ESC pairs, and C0/DEL controls except tab and newline. */
const NOISE = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

/** The searchable text of some log bytes. */
export function searchableText(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return text.includes('\x1b') || /[\x00-\x08\x0b-\x1f\x7f]/.test(text) ? text.replace(NOISE, '') : text;
}

/** Searches need three characters (the trigram indexes' unit: shorter texts find nothing) and no line break (matches are within a line). */
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

/** Lines are grouped into blocks of about this many bytes: fewer index rows than one per line. */
const BLOCK_BYTES = 8 * 1024;
/** A line longer than this is indexed in pieces (a log without newlines must not wait forever). */
const MAX_PIECE = 256 * 1024;

/**
 * How much of `bytes` (a log's not yet indexed part) can be indexed now: through its last complete line;
 * all of it when `whole` (a finished log ends there) or when it holds no newline but is MAX_PIECE long.
 */
export function indexableEnd(bytes: Uint8Array, whole: boolean): number {
  if (whole) return bytes.length;
  return bytes.lastIndexOf(0x0a) + 1 || (bytes.length >= MAX_PIECE ? bytes.length : 0);
}

/** The blocks [start, end) that bytes [0, cut) are indexed in: whole lines, about BLOCK_BYTES each. */
export function* blockRanges(bytes: Uint8Array, cut: number): Generator<[number, number]> {
  for (let start = 0; start < cut; ) {
    let end = Math.min(start + BLOCK_BYTES, cut);
    if (end < cut) {
      const nl = bytes.lastIndexOf(0x0a, end - 1);
      end = nl >= start ? nl + 1 : Math.min(cut, bytes.indexOf(0x0a, end) + 1 || cut);
    }
    yield [start, end];
    start = end;
  }
}

/** An indexed block of a log: its bytes, the number of its first line among all lines indexed for the job, and its newlines. */
export interface IndexedBlock {
  offset: number;
  end: number;
  line: number;
  lines: number;
}

/**
 * The matching lines of a job's matching `blocks` (in offset order), numbered as the viewer numbers the
 * retained log that starts at `start`; `first` is the job's first block in the window. At most `max` + 1
 * (so the caller can tell there are more). A match only in bytes retention dropped is none.
 */
export async function blockMatches(
  blocks: IndexedBlock[],
  first: IndexedBlock,
  start: number,
  needle: string,
  max: number,
  read: (from: number, to: number) => Buffer | Promise<Buffer>,
): Promise<LogSearchLine[]> {
  // The window's first line: the first block's number plus the lines retention cut from its front.
  const firstLine = first.offset >= start ? first.line : first.line + first.lines - countNewlines(await read(start, first.end));
  const lines: LogSearchLine[] = [];
  for (const b of blocks) {
    const from = Math.max(b.offset, start);
    if (from >= b.end) continue;
    const blockLine = from === b.offset ? b.line : firstLine;
    for (const found of matchingLines(await read(from, b.end), from, needle, max - lines.length)) {
      lines.push({ line: blockLine + found.index - firstLine + 1, offset: found.offset, text: found.text });
    }
    if (lines.length > max) break;
  }
  return lines;
}
