// @ts-check
/**
 * Removes the syntax of section markers from the stripped view of a log: a reader sees a section's
 * header text, not `section_start:1732982400:npm_test[collapsed=true]` or `::group::`. A `::endgroup::`
 * line goes whole. Runs before the ANSI filter (ansi-filter.js, which removes what is left of a marker
 * split across appends: a `\r` or `\e[0K` that came after the rest of it).
 *
 * Shared by the server's stripped view (src/text/section-markers.ts feeds it Buffers) and the log viewer
 * (stripped-text.js), so that both show the same text; plain ES module, no Node APIs.
 *
 * It works on byte strings: one char per byte (latin1), so that lengths are counted in bytes on both
 * sides. The result does not depend on how the bytes are chunked: a tail that may still turn out to be a
 * marker is held until the next bytes say, which only happens to a line that ends in the middle of a
 * marker or of a group line's timestamp.
 */

/** A GitLab marker, anywhere in a line (kind, unix seconds, name, options), with the erase code after it. */
export const GITLAB_MARKER = String.raw`section_(start|end):(\d{1,12}):([A-Za-z0-9_.-]{1,100})(?:\[([^\]\r\n]{0,200})\])?\r(?:\x1b\[0?K)?`;

const GITLAB = new RegExp(GITLAB_MARKER, 'g');
const MAX_HELD = 512;
const LITERALS = ['section_start:', 'section_end:'];
const PARTIAL_REST = /^\d{0,12}(?::[A-Za-z0-9_.-]{0,100}(?:\[[^\]\r\n]{0,200}\]?)?)?$/;
const TIMESTAMP = 'dddd-dd-ddTdd:dd:dd';

export class MarkerFilter {
  #held = '';
  /** Whether #held (or the next byte, when nothing is held) starts a line. */
  #lineStart = true;

  /** Nothing is held: whole lines without `::` or `section_` would pass unchanged (see `passedLines`). */
  get idle() {
    return this.#held === '';
  }

  /** Nothing is held and the next byte starts a line. */
  get atLineStart() {
    return this.#held === '' && this.#lineStart;
  }

  /**
   * Says that whole lines went by without this filter (the caller found neither `::` nor `section_` in
   * them while `idle`: the server checks its Buffers natively rather than making strings of them).
   */
  passedLines() {
    this.#lineStart = true;
  }

  /** @param {string} text bytes, one char each */
  push(text) {
    if (!this.#held && text.endsWith('\n') && text.indexOf('::') === -1 && text.indexOf('section_') === -1) {
      this.#lineStart = true;
      return text;
    }
    const all = this.#held + text;
    this.#held = '';
    return this.#process(all, false);
  }

  end() {
    const text = this.#held;
    this.#held = '';
    const out = this.#process(text, true);
    this.#lineStart = true;
    return out;
  }

  /** @param {string} text @param {boolean} final */
  #process(text, final) {
    let out = '';
    let pos = 0;
    let lineStart = this.#lineStart;
    while (pos < text.length) {
      const newline = text.indexOf('\n', pos);
      const end = newline === -1 ? text.length : newline + 1;
      const line = text.slice(pos, end);
      const body = newline === -1 ? line : line.slice(0, -1);
      let rest = line;
      // A whole line without "::" cannot be a group command (the common case: skip the check).
      if (lineStart && (newline === -1 || body.includes('::'))) {
        const group = groupCommand(body.replace(/\r$/, ''));
        if (group === 'partial' && newline === -1 && !final) return this.#hold(out, text.slice(pos), true);
        if (typeof group === 'object') {
          if (group.kind === 'endgroup') {
            if (newline === -1 && !final) return this.#hold(out, text.slice(pos), true);
            pos = end; // the whole line goes
            continue;
          }
          rest = line.slice(0, group.at) + line.slice(group.at + '::group::'.length);
        }
      }
      if (rest.includes('section_')) rest = rest.replace(GITLAB, '');
      if (newline === -1 && !final) {
        const pending = markerStart(rest);
        if (pending !== -1) {
          // Hold the unfinished marker; what comes before it on the line can go.
          out += rest.slice(0, pending);
          return this.#hold(out, rest.slice(pending), false);
        }
      }
      out += rest;
      lineStart = newline !== -1;
      pos = end;
    }
    this.#lineStart = lineStart;
    return out;
  }

  /** @param {string} out @param {string} tail @param {boolean} lineStart */
  #hold(out, tail, lineStart) {
    // Bounded: a "marker" that grows past any real one's length is ordinary text.
    if (tail.length > MAX_HELD) {
      this.#lineStart = false;
      return out + tail;
    }
    this.#held = tail;
    this.#lineStart = lineStart;
    return out;
  }
}

/** Where an unfinished GitLab marker begins at the end of `line`, or -1. @param {string} line */
function markerStart(line) {
  const from = Math.max(0, line.length - MAX_HELD);
  for (let at = line.indexOf('s', from); at !== -1; at = line.indexOf('s', at + 1)) {
    const tail = line.slice(at);
    for (const literal of LITERALS) {
      if (literal.startsWith(tail)) return at;
      if (tail.startsWith(literal) && PARTIAL_REST.test(tail.slice(literal.length))) return at;
    }
  }
  return -1;
}

/**
 * Whether a line (without its newline) is a GitHub group command after its optional lead (a line
 * timestamp, then ANSI codes): where the command stands, 'partial' while the line so far could still
 * become one, or 'no'.
 * @param {string} line
 * @returns {{ kind: 'group' | 'endgroup', at: number } | 'partial' | 'no'}
 */
function groupCommand(line) {
  let i = 0;
  if (/\d/.test(line[0] ?? '')) {
    for (; i < TIMESTAMP.length; i++) {
      if (i === line.length) return 'partial';
      const want = TIMESTAMP[i];
      if (want === 'd' ? !/\d/.test(line[i]) : line[i] !== want) return 'no';
    }
    if (line[i] === '.') for (i++; /\d/.test(line[i] ?? ''); ) i++;
    if (i === line.length) return 'partial';
    if (line[i++] !== 'Z') return 'no';
    if (i === line.length) return 'partial';
    if (line[i++] !== ' ') return 'no';
  }
  while (line[i] === '\x1b') {
    let j = i + 1;
    if (j === line.length) return 'partial';
    if (line[j] !== '[') break;
    for (j++; /[0-9;]/.test(line[j] ?? ''); ) j++;
    if (j === line.length) return 'partial';
    if (!/[A-Za-z]/.test(line[j])) break;
    i = j + 1;
  }
  const rest = line.slice(i);
  for (const kind of /** @type {const} */ (['group', 'endgroup'])) {
    const command = `::${kind}::`;
    if (rest.startsWith(command)) return { kind, at: i };
    if (command.startsWith(rest)) return 'partial';
  }
  return 'no';
}
