// @ts-check
/**
 * The log as the viewer holds it: an array of line strings (never HTML: a line becomes HTML only when it
 * is on screen), the partial last line, and where the ANSI style state changes between lines, so that any
 * line can be rendered on its own with the colours that earlier lines left active.
 *
 * Plain JavaScript without DOM use, so that the Node tests import it as it is.
 */
import { displayText, withoutMarkers } from './stripped-text.js';

/** A leading ISO-8601 UTC timestamp and its space, as `buildlog run` and Apify write them. */
export const TIMESTAMP_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z /;

const SGR_RE = /\x1b\[([\d;]*)m/g;

/**
 * SGR state as ansi_up tracks it (bold, faint, italic, underline, foreground, background), mirrored here
 * so that a line's starting state is known without converting earlier lines to HTML.
 * @typedef {{ bold: boolean, faint: boolean, italic: boolean, underline: boolean, fg: string | null, bg: string | null }} SgrState
 */

/** @returns {SgrState} */
function initialState() {
  return { bold: false, faint: false, italic: false, underline: false, fg: null, bg: null };
}

/**
 * Applies the SGR parameters of one `ESC [ ... m` the way ansi_up's process_ansi does.
 * @param {SgrState} s
 * @param {string} params
 */
function applySgr(s, params) {
  const cmds = params.split(';');
  while (cmds.length > 0) {
    const num = parseInt(/** @type {string} */ (cmds.shift()), 10);
    if (isNaN(num) || num === 0) Object.assign(s, initialState());
    else if (num === 1) s.bold = true;
    else if (num === 2) s.faint = true;
    else if (num === 3) s.italic = true;
    else if (num === 4) s.underline = true;
    else if (num === 21) s.bold = false;
    else if (num === 22) s.bold = s.faint = false;
    else if (num === 23) s.italic = false;
    else if (num === 24) s.underline = false;
    else if (num === 39) s.fg = null;
    else if (num === 49) s.bg = null;
    else if ((num >= 30 && num < 38) || (num >= 90 && num < 98)) s.fg = String(num);
    else if ((num >= 40 && num < 48) || (num >= 100 && num < 108)) s.bg = String(num);
    else if ((num === 38 || num === 48) && cmds.length > 0) {
      const mode = cmds.shift();
      let color = null;
      if (mode === '5' && cmds.length > 0) {
        const index = parseInt(/** @type {string} */ (cmds.shift()), 10);
        if (index >= 0 && index <= 255) color = `${num};5;${index}`;
      }
      if (mode === '2' && cmds.length > 2) {
        const [r, g, b] = cmds.splice(0, 3).map((v) => parseInt(v, 10));
        if ([r, g, b].every((v) => v >= 0 && v <= 255)) color = `${num};2;${r};${g};${b}`;
      }
      if (color !== null) {
        if (num === 38) s.fg = color;
        else s.bg = color;
      }
    }
  }
}

/**
 * The state after `text`, given the state `before` (an SGR prefix string, '' for none).
 * @param {string} before
 * @param {string} text
 * @returns {string} an SGR sequence that recreates the state, '' when it is the default one
 */
export function stateAfter(before, text) {
  if (text.indexOf('\x1b[') === -1) return before;
  const s = initialState();
  if (before) applySgr(s, before.slice(2, -1));
  SGR_RE.lastIndex = 0;
  for (let m = SGR_RE.exec(text); m !== null; m = SGR_RE.exec(text)) applySgr(s, m[1]);
  const parts = [];
  if (s.bold) parts.push('1');
  if (s.faint) parts.push('2');
  if (s.italic) parts.push('3');
  if (s.underline) parts.push('4');
  if (s.fg) parts.push(s.fg);
  if (s.bg) parts.push(s.bg);
  return parts.length ? `\x1b[${parts.join(';')}m` : '';
}

/**
 * What one stored line shows: its timestamp (kept apart, so it can be dimmed, hidden or shown in another
 * form), and the rest as the server's stripped view has it (web/stripped-text.js): `plain` the text,
 * `styled` the same with the SGR sequences and http(s) links that ansi_up renders in place. A line that
 * the stripped view drops whole (`::endgroup::`) shows nothing.
 * @param {string} line
 * @returns {{ ts: string, plain: string, styled: string }}
 */
export function displayParts(line) {
  const text = withoutMarkers(line);
  if (text === null) return { ts: '', plain: '', styled: '' };
  let ts = '';
  if (text.length > 24 && text.charCodeAt(4) === 45 /* - */) {
    const m = TIMESTAMP_RE.exec(text);
    if (m) ts = m[0];
  }
  return { ts, ...displayText(ts ? text.slice(ts.length) : text) };
}

/**
 * What search matches and what the rendered line shows as text: with its timestamp as logged when `withTs`
 * is true, as `withTs` formats it when it is a function, without it when false.
 * @param {string} line
 * @param {boolean | ((ts: string) => string)} withTs
 */
export function plainText(line, withTs = true) {
  const { ts, plain } = displayParts(line);
  const shown = !ts || !withTs ? '' : withTs === true ? ts : withTs(ts);
  return shown + plain;
}

export class LogModel {
  constructor() {
    /** @type {string[]} complete lines, without their `\n` */
    this.lines = [];
    /** The last line while it has no `\n` yet (a prompt, a progress bar, a line cut by a chunk). */
    this.partial = '';
    /** Line indexes where the starting SGR state changes, and the state from there on (parallel arrays). */
    this.stateLines = [0];
    /** @type {string[]} */
    this.stateValues = [''];
    /** State at the start of the partial line. */
    this.tailState = '';
    /** Count of characters taken in (for figures), and how many times the partial line changed. */
    this.chars = 0;
    this.partialVersion = 0;
  }

  /** Lines shown: the complete ones and the partial last line if there is one. */
  get lineCount() {
    return this.lines.length + (this.partial === '' ? 0 : 1);
  }

  /** @param {number} i */
  line(i) {
    return i < this.lines.length ? this.lines[i] : this.partial;
  }

  /**
   * Takes decoded text in any cut (a line, an escape sequence or a surrogate pair may be split between
   * two calls: a line is final only at its `\n`). Returns the index of the first line that changed.
   * @param {string} text
   */
  append(text) {
    const firstChanged = this.lines.length;
    if (text === '') return firstChanged;
    this.chars += text.length;
    let start = 0;
    let nl = text.indexOf('\n');
    if (nl !== -1 && this.partial !== '') {
      this.#push(this.partial + text.slice(0, nl));
      this.partial = '';
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    while (nl !== -1) {
      this.#push(text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf('\n', start);
    }
    if (start < text.length) {
      this.partial += text.slice(start);
      this.partialVersion++;
    }
    return firstChanged;
  }

  /** @param {string} line */
  #push(line) {
    this.lines.push(line);
    if (line.indexOf('\x1b[') === -1) return;
    const next = stateAfter(this.tailState, line);
    if (next !== this.tailState) {
      this.tailState = next;
      this.stateLines.push(this.lines.length);
      this.stateValues.push(next);
    }
  }

  /** A line that is not log content (a notice of bytes no longer kept), ending any partial line first. */
  appendNotice(text) {
    if (this.partial !== '') this.append('\n');
    this.#push(`\x1b[0m${text}`);
  }

  /** The SGR state active at the start of line `i`. @param {number} i */
  stateAt(i) {
    const { stateLines, stateValues } = this;
    let lo = 0;
    let hi = stateLines.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (stateLines[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    return stateValues[lo];
  }
}

/**
 * Case-insensitive search over the model's lines, kept up to date as lines arrive: complete lines are
 * searched once, the partial last line again whenever it changes.
 */
export class LogSearch {
  /** @param {LogModel} model */
  constructor(model) {
    this.model = model;
    this.query = '';
    /** @type {boolean | ((ts: string) => string)} */
    this.withTs = true;
    /** Line index of each match, in order (a line with two matches is there twice). */
    this.matchLines = /** @type {number[]} */ ([]);
    this.searchedLines = 0;
    this.partialMatches = 0;
    this.partialVersion = -1;
    /** @type {(string | undefined)[]} plain text of lines, filled as searched */
    this.plain = [];
  }

  /** @param {string} query @param {boolean | ((ts: string) => string)} withTs as plainText takes it */
  setQuery(query, withTs) {
    const q = query.toLowerCase();
    if (q === this.query && withTs === this.withTs) return false;
    if (withTs !== this.withTs) this.plain = [];
    this.query = q;
    this.withTs = withTs;
    this.matchLines = [];
    this.searchedLines = 0;
    this.partialVersion = -1;
    this.partialMatches = 0;
    this.update();
    return true;
  }

  #plain(i) {
    let p = this.plain[i];
    if (p === undefined) {
      p = plainText(this.model.lines[i], this.withTs).toLowerCase();
      this.plain[i] = p;
    }
    return p;
  }

  /** Searches what arrived since the last call. */
  update() {
    const { model, query } = this;
    if (!query) return;
    const { lines } = model;
    const out = this.matchLines;
    for (let i = this.searchedLines; i < lines.length; i++) {
      const text = this.#plain(i);
      for (let at = text.indexOf(query); at !== -1; at = text.indexOf(query, at + query.length)) out.push(i);
    }
    this.searchedLines = lines.length;
    if (this.partialVersion !== model.partialVersion || model.partial === '') {
      this.partialVersion = model.partialVersion;
      let n = 0;
      if (model.partial !== '') {
        const text = plainText(model.partial, this.withTs).toLowerCase();
        for (let at = text.indexOf(query); at !== -1; at = text.indexOf(query, at + query.length)) n++;
      }
      this.partialMatches = n;
    }
  }

  get count() {
    return this.query ? this.matchLines.length + this.partialMatches : 0;
  }

  /** The line of match `k`, and which match within its line it is. @param {number} k */
  match(k) {
    if (k >= this.matchLines.length) return { line: this.model.lines.length, nth: k - this.matchLines.length };
    const line = this.matchLines[k];
    let first = k;
    while (first > 0 && this.matchLines[first - 1] === line) first--;
    return { line, nth: k - first };
  }

  /** The first match at or after line `i`, or -1. @param {number} i */
  firstAtOrAfter(i) {
    const m = this.matchLines;
    let lo = 0;
    let hi = m.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (m[mid] < i) lo = mid + 1;
      else hi = mid;
    }
    if (lo < m.length) return lo;
    return this.partialMatches > 0 && i <= this.model.lines.length ? m.length : -1;
  }
}
