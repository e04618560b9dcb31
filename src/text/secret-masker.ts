import { MultiSearch, type Match } from './multi-search.js';

/** What a masked value becomes, as in GitLab's runner. */
export const MASKED = Buffer.from('[MASKED]');
/** GitHub Actions' workflow command: a line `::add-mask::<value>` registers a value at run time. */
const ADD_MASK = Buffer.from('::add-mask::');
/** A registration line longer than this without its newline is not one (and is masked as output). */
const MAX_REGISTRATION = 4096;
/** Encoded forms shorter than this are not masked: they would hide ordinary text. */
const MIN_FORM_LENGTH = 6;

/**
 * The byte forms in which a secret can appear in output: the value; for a multi-line value each line
 * too; its URL encoding (`%XX`, and `+` for spaces); and its base64 (standard and URL alphabets), also
 * as it stands inside a longer encoded text (`user:password` in a Basic auth header), where the
 * characters that depend on the neighbouring bytes are left out.
 */
export function secretForms(value: string | Buffer): Buffer[] {
  const raw = typeof value === 'string' ? Buffer.from(value) : value;
  if (raw.length === 0) return [];
  const text = raw.toString();
  const forms: Buffer[] = [raw];
  const derived: string[] = [];
  if (text.includes('\n')) derived.push(...text.split('\n').map((line) => line.replace(/\r$/, '')));
  const url = encodeURIComponent(text);
  derived.push(url, url.replaceAll('%20', '+'));
  for (const shift of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw]);
    // Base64 character j holds bits 6j..6j+5; keep those that come from the value's own bits only.
    const first = Math.ceil((8 * shift) / 6);
    const end = Math.floor((8 * padded.length) / 6);
    for (const encoding of ['base64', 'base64url'] as const) derived.push(padded.toString(encoding).slice(first, end));
  }
  derived.push(raw.toString('base64'));
  for (const form of derived) if (form.length >= MIN_FORM_LENGTH) forms.push(Buffer.from(form));
  return forms;
}

/**
 * The values to mask, shared by the maskers of one command's stdout and stderr: a value registered
 * on one of them masks both from then on.
 */
export class SecretSet {
  readonly #patterns: Buffer[] = [];
  readonly #seen = new Set<string>();
  /** Every proper prefix of every pattern, as latin1 strings (one char per byte). */
  readonly #prefixes = new Set<string>();
  /** Whether some pattern longer than one byte starts with this byte. */
  readonly #starts = new Uint8Array(256);
  /** Whether some pattern longer than two bytes starts with these two bytes (first << 8 | second). */
  readonly #pairs = new Uint8Array(65536);
  #search: MultiSearch | null = null;

  constructor(values: Iterable<string | Buffer> = []) {
    for (const value of values) this.add(value);
  }

  get size(): number {
    return this.#seen.size;
  }

  add(value: string | Buffer): void {
    for (const form of secretForms(value)) {
      const key = form.toString('latin1');
      if (this.#seen.has(key)) continue;
      this.#seen.add(key);
      this.#patterns.push(form);
      this.#search = null;
      if (form.length > 1) this.#starts[form[0]!] = 1;
      if (form.length > 2) this.#pairs[(form[0]! << 8) | form[1]!] = 1;
      for (let n = 1; n < form.length; n++) this.#prefixes.add(key.slice(0, n));
    }
  }

  get search(): MultiSearch {
    return (this.#search ??= new MultiSearch(this.#patterns));
  }

  /**
   * Where the part of `data[from, to)` begins that could still grow into a secret with more bytes:
   * the earliest position whose rest is a proper prefix of some pattern (`to` if none).
   */
  pendingStart(data: Buffer, from: number, to: number): number {
    const longest = Math.min(this.search.maxLength - 1, to - from);
    for (let n = longest; n >= 1; n--) {
      const at = to - n;
      // A table lookup (of the first byte, or of the first two) rules out most positions before a string is made.
      const possible = n === 1 ? this.#starts[data[at]!] : this.#pairs[(data[at]! << 8) | data[at + 1]!];
      if (possible && this.#prefixes.has(data.toString('latin1', at, to))) return at;
    }
    return to;
  }

  /** `data` with every secret in it replaced; for text that is complete (our own messages). */
  maskAll(data: Buffer): Buffer {
    return replaceMatches(data, 0, data.length, mergeMatches(this.search.findAll(data)));
  }
}

/** Sorted, non-overlapping ranges covering every match: overlapping secrets become one (touching ones stay two, as they would when a write falls between them). */
function mergeMatches(matches: Match[]): Match[] {
  if (matches.length < 2) return matches;
  matches.sort((a, b) => a.start - b.start);
  const merged: Match[] = [{ ...matches[0]! }];
  for (const m of matches) {
    const last = merged[merged.length - 1]!;
    if (m.start < last.end) last.end = Math.max(last.end, m.end);
    else merged.push({ ...m });
  }
  return merged;
}

/** `data[from, to)` with each range in `ranges` (offsets relative to `from`) replaced by [MASKED]. */
function replaceMatches(data: Buffer, from: number, to: number, ranges: Match[]): Buffer {
  if (ranges.length === 0) return data.subarray(from, to);
  const parts: Buffer[] = [];
  let at = from;
  for (const r of ranges) {
    parts.push(data.subarray(at, from + r.start), MASKED);
    at = from + r.end;
  }
  parts.push(data.subarray(at, to));
  return Buffer.concat(parts);
}

/**
 * Masks one output stream as it is written, whatever the chunking: a secret split across writes at
 * any byte is still replaced. Bytes that cannot be the start of a secret go out at once; only a tail
 * that is the beginning of some secret (or of an `::add-mask::` line) is held until the next write shows
 * what it is, or the stream ends. `::add-mask::<value>` lines register the value and are dropped.
 */
export class SecretMasker {
  readonly #secrets: SecretSet;
  #held: Buffer = Buffer.alloc(0);
  /** Whether the first held byte (or the next byte, when nothing is held) starts a line. */
  #lineStart = true;

  constructor(secrets: SecretSet) {
    this.#secrets = secrets;
  }

  /** The bytes of `chunk` (after those held from before) that can be shown now. */
  push(chunk: Buffer): Buffer {
    const data = this.#held.length ? Buffer.concat([this.#held, chunk]) : chunk;
    return this.#process(data, false);
  }

  /**
   * As `push`, handing what can be shown to `emit` in up to two parts. A held tail waits on at most the
   * rest of its line: pushed with that line alone, it is settled by a short copy, and the rest of the
   * chunk is masked in place instead of being copied behind the tail (a copy of nearly every chunk when
   * many secrets are masked, since most bytes start one of their forms).
   */
  pushParts(chunk: Buffer, emit: (part: Buffer) => void): void {
    const lf = this.#held.length ? chunk.indexOf(0x0a) : -1;
    if (lf === -1 || lf === chunk.length - 1) return emit(this.push(chunk));
    emit(this.push(chunk.subarray(0, lf + 1)));
    emit(this.push(chunk.subarray(lf + 1)));
  }

  /** The output ended: whatever is held is final now. */
  end(): Buffer {
    const data = this.#held;
    this.#held = Buffer.alloc(0);
    return this.#process(data, true);
  }

  #process(data: Buffer, final: boolean): Buffer {
    const out: Buffer[] = [];
    let pos = 0;
    let lineStart = this.#lineStart;
    for (let at = this.#nextRegistration(data, pos, pos, lineStart); at !== -1; at = this.#nextRegistration(data, at + 1, pos, lineStart)) {
      const newline = data.indexOf(0x0a, at);
      const end = newline === -1 ? data.length : newline;
      if (end - at > MAX_REGISTRATION) continue; // too long to be one: ordinary output
      out.push(this.#mask(data, pos, at, null));
      if (newline === -1 && !final) return this.#hold(out, data, at, true); // the value is still coming
      this.#secrets.add(registeredValue(data, at, end));
      pos = newline === -1 ? data.length : newline + 1;
      lineStart = true;
      at = pos - 1;
    }
    const cut = final ? data.length : this.#pendingStart(data, pos, lineStart);
    const ranges = mergeMatches(this.#secrets.search.findAll(data.subarray(pos)));
    // A secret that runs into the held tail is held whole, to be found again with the next bytes.
    const straddling = ranges.find((r) => pos + r.start < cut && pos + r.end > cut);
    const held = straddling ? pos + straddling.start : cut;
    out.push(this.#mask(data, pos, held, ranges.filter((r) => pos + r.end <= held)));
    const heldLineStart = held === pos ? lineStart : data[held - 1] === 0x0a;
    return this.#hold(out, data, held, heldLineStart);
  }

  /** Where the next `::add-mask::` that starts a line is, searching `data` from `from`; or -1. */
  #nextRegistration(data: Buffer, from: number, pos: number, lineStart: boolean): number {
    for (let at = data.indexOf(ADD_MASK, from); at !== -1; at = data.indexOf(ADD_MASK, at + 1)) {
      if (at === pos ? lineStart : data[at - 1] === 0x0a) return at;
    }
    return -1;
  }

  /** Where the tail of `data[pos..]` starts that may still become a secret or an `::add-mask::` line. */
  #pendingStart(data: Buffer, pos: number, lineStart: boolean): number {
    let cut = this.#secrets.pendingStart(data, pos, data.length);
    const lastLine = Math.max(pos, data.lastIndexOf(0x0a) + 1);
    const startsLine = lastLine === pos ? lineStart : true;
    const rest = data.subarray(lastLine);
    if (startsLine && rest.length > 0 && rest.length < ADD_MASK.length && rest.equals(ADD_MASK.subarray(0, rest.length))) {
      cut = Math.min(cut, lastLine);
    }
    return cut;
  }

  /** `data[from, to)` with `ranges` (relative to `from`; found already, or looked for now) masked. */
  #mask(data: Buffer, from: number, to: number, ranges: Match[] | null): Buffer {
    const found = ranges ?? mergeMatches(this.#secrets.search.findAll(data.subarray(from, to)));
    return replaceMatches(data, from, to, found);
  }

  #hold(out: Buffer[], data: Buffer, at: number, lineStart: boolean): Buffer {
    // Copied: the caller's chunk may be a view of a buffer that is reused.
    this.#held = at < data.length ? Buffer.from(data.subarray(at)) : Buffer.alloc(0);
    this.#lineStart = at < data.length ? lineStart : data.length > 0 ? data[data.length - 1] === 0x0a : this.#lineStart;
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }
}

/** The value of the registration line at `data[at, end)`, without a trailing CR or surrounding blanks. */
function registeredValue(data: Buffer, at: number, end: number): Buffer {
  return Buffer.from(data.subarray(at + ADD_MASK.length, end).toString('latin1').trim(), 'latin1');
}
