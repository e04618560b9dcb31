// @ts-check
/**
 * The sections of the log the viewer holds, which of them are folded, and so which lines are on which
 * row: the scroll area shows rows, a row shows one line; folded section bodies and lines that only end
 * sections (nothing is left of them once the marker syntax goes) have no row.
 *
 * Lines are scanned once complete, so a marker cut between two network chunks is found whole. A log
 * read from the middle (retention dropped its head) has only the sections that start in what is kept,
 * as `GET …/sections` does.
 *
 * Plain JavaScript without DOM use, so that the Node tests import it as it is.
 */
import { plainText } from './log-model.js';
import { lineMarkers } from './section-markers.js';

/**
 * @typedef {object} Section
 * @property {string} name a GitLab section's name, a GitHub group's title
 * @property {string} title the header text without ANSI codes
 * @property {number} depth 0 for a section not inside another
 * @property {'gitlab' | 'github'} syntax
 * @property {number} line index of the header line (the one with the start marker)
 * @property {number | null} endLine index of the line with the end marker; null while open
 * @property {boolean} endHidden whether that line only ends sections (it has no row)
 * @property {number | null} startedAt epoch milliseconds, null if unknown
 * @property {number | null} finishedAt
 * @property {boolean} collapsed GitLab's `[collapsed=true]`: starts folded
 * @property {boolean} folded
 * @property {Section | null} parent
 */

export class Sections {
  constructor() {
    /** @type {Section[]} in the order they start */
    this.list = [];
    /** @type {Section[]} the open ones, outermost first */
    this.open = [];
    /** @type {Map<number, Section>} header line -> the (outermost) section it starts */
    this.headers = new Map();
    /** @type {number[]} lines that only end sections (also ends that match no open section): no rows */
    this.endOnly = [];
    this.scanned = 0;
    /** Bumped whenever a section starts, ends, folds or unfolds (rows that show one are made again). */
    this.version = 0;
    // Hidden line ranges [from, to), merged and in order (only the last may run to Infinity: an open
    // folded section), and the count of hidden lines before each one.
    /** @type {number[]} */ this.from = [];
    /** @type {number[]} */ this.to = [];
    /** @type {number[]} */ this.before = [0];
    this.stale = false;
  }

  /** Scans the lines completed since the last call. @param {{ lines: string[] }} model */
  update(model) {
    const { lines } = model;
    for (; this.scanned < lines.length; this.scanned++) {
      const line = lines[this.scanned];
      const markers = lineMarkers(line);
      if (markers.length > 0) this.#take(markers, this.scanned, line);
    }
  }

  /** @param {import('./section-markers.js').Marker[]} markers @param {number} index @param {string} line */
  #take(markers, index, line) {
    let started = false;
    let ends = false;
    /** @type {Section[]} */
    const ended = [];
    for (const m of markers) {
      if (m.kind === 'start') {
        /** @type {Section} */
        const s = {
          name: m.name,
          title: m.title,
          depth: this.open.length,
          syntax: m.syntax,
          line: index,
          endLine: null,
          endHidden: false,
          startedAt: m.at,
          finishedAt: null,
          collapsed: m.collapsed,
          folded: m.collapsed,
          parent: this.open[this.open.length - 1] ?? null,
        };
        this.list.push(s);
        this.open.push(s);
        if (!this.headers.has(index)) this.headers.set(index, s);
        started = true;
        continue;
      }
      // An end closes the innermost open section it matches (a `::endgroup::` any group), and every
      // section opened inside that one; an end that matches none is ignored.
      ends = true;
      for (let i = this.open.length - 1; i >= 0; i--) {
        const s = this.open[i];
        if (s.syntax !== m.syntax || (m.syntax === 'gitlab' && s.name !== m.name)) continue;
        for (const closed of this.open.splice(i)) {
          closed.endLine = index;
          closed.finishedAt = m.at;
          ended.push(closed);
        }
        break;
      }
    }
    if (ends && !started && plainText(line, false) === '') {
      this.endOnly.push(index);
      for (const s of ended) s.endHidden = true;
    }
    this.#changed();
  }

  #changed() {
    this.version++;
    this.stale = true;
  }

  #ranges() {
    if (!this.stale) return;
    this.stale = false;
    /** @type {[number, number][]} */
    const spans = [];
    for (const line of this.endOnly) spans.push([line, line + 1]);
    for (const s of this.list) {
      if (s.folded) spans.push([s.line + 1, s.endLine === null ? Infinity : s.endHidden ? s.endLine + 1 : s.endLine]);
    }
    spans.sort((a, b) => a[0] - b[0]);
    this.from = [];
    this.to = [];
    this.before = [0];
    for (const [from, to] of spans) {
      if (to <= from) continue;
      const last = this.to.length - 1;
      if (last >= 0 && from <= this.to[last]) this.to[last] = Math.max(this.to[last], to);
      else {
        this.from.push(from);
        this.to.push(to);
      }
    }
    for (let k = 0; k < this.from.length; k++) this.before.push(this.before[k] + (this.to[k] - this.from[k]));
  }

  /** Rows that `n` lines take. @param {number} n */
  rowCount(n) {
    this.#ranges();
    const k = this.from.length - 1;
    return k < 0 ? n : n - this.before[k] - Math.max(0, Math.min(this.to[k], n) - this.from[k]);
  }

  /** The line a row shows. @param {number} row */
  lineAt(row) {
    this.#ranges();
    const { to, before } = this;
    // The last run of shown lines that starts at or before `row` (runs: before the first range, and
    // after each finite one).
    let lo = 0;
    let hi = to.length > 0 && to[to.length - 1] === Infinity ? to.length - 1 : to.length;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (to[mid - 1] - before[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    return row + before[lo];
  }

  /** The row of a line, or of the header of the folded section that hides it. @param {number} line */
  rowOf(line) {
    this.#ranges();
    const { from, to, before } = this;
    let lo = 0;
    let hi = from.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (from[mid] <= line) lo = mid + 1;
      else hi = mid;
    }
    // `lo` ranges start at or before the line; is it inside the last of them?
    if (lo > 0 && line < to[lo - 1]) return from[lo - 1] - 1 - before[lo - 1];
    return line - before[lo];
  }

  /** @param {Section} s */
  toggle(s) {
    s.folded = !s.folded;
    this.#changed();
  }

  /** Unfolds a section and the sections around it. @param {Section} s */
  unfold(s) {
    for (let p = /** @type {Section | null} */ (s); p; p = p.parent) p.folded = false;
    this.#changed();
  }

  /** Unfolds every section whose folding hides `line`. @param {number} line */
  reveal(line) {
    let changed = false;
    for (const s of this.list) {
      if (s.folded && line > s.line && (s.endLine === null || line <= s.endLine)) {
        s.folded = false;
        changed = true;
      }
    }
    if (changed) this.#changed();
  }

  /** The first section of that name (as `GET …/log?section=` picks it). @param {string} name */
  byName(name) {
    return this.list.find((s) => s.name === name) ?? null;
  }

  /** The innermost section still open: where a job that failed stopped. */
  innermostOpen() {
    return this.open[this.open.length - 1] ?? null;
  }
}

/** The section a `#section=<name>` address names, or null. @param {string} hash */
export function sectionFromHash(hash) {
  if (!hash.startsWith('#section=')) return null;
  try {
    return decodeURIComponent(hash.slice('#section='.length)) || null;
  } catch {
    return null;
  }
}

/** @param {Section} s */
export function sectionHash(s) {
  return `#section=${encodeURIComponent(s.name)}`;
}
