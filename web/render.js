// @ts-check
import { AnsiUp } from './vendor/ansi_up.js';
import { displayParts } from './log-model.js';
import { formatDuration } from './format.js';
import { sectionHash } from './sections.js';

/**
 * One line of the log as HTML, made only when the line is on screen: the text of the server's stripped
 * view (log-model.js displayParts), styled. ansi_up escapes the text (`<`, `>`, `&`, quotes) and turns
 * SGR sequences into spans: the 16 standard colours as classes (themed in viewer.css), 256 and true
 * colours as inline `color:rgb()`; OSC 8 links only for http(s) URLs.
 */
const ansi = new AnsiUp();
ansi.use_classes = true;
ansi.escape_html = true;

/** @param {string} text */
export function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/**
 * @param {string} line the stored line, escape sequences and all
 * @param {string} state the SGR prefix active at its start (from LogModel.stateAt)
 * @param {((ts: string) => string) | null} formatTs how its timestamp shows (null: as logged)
 */
export function lineHtml(line, state, formatTs = null) {
  const parts = displayParts(line);
  const ts = parts.ts ? `<span class="ts">${escapeHtml(formatTs ? formatTs(parts.ts) : parts.ts)}</span>` : '';
  if (parts.styled.indexOf('\x1b') === -1 && state === '') return ts + escapeHtml(parts.styled);
  // Each line starts from a reset, then the state earlier lines left, so lines render independently.
  // `styled` holds only whole sequences, so nothing waits in ansi_up's buffer for the next line.
  const html = ansi.ansi_to_html(`\x1b[0m${state}${parts.styled}`);
  // Links from the log (OSC 8, http(s) only) open apart from the viewer. ansi_up escapes all log text, so
  // `<a href=` here can only be one it made.
  return ts + (html.indexOf('<a href=') === -1 ? html : html.replaceAll('<a href=', '<a target="_blank" rel="noopener noreferrer" href='));
}

/**
 * Wraps the occurrences of `query` (lower-case) in the rendered text of `el` in <mark>; the `current`-th
 * one (or none: -1) gets the class "current". Text inside elements matching `skip` is not searched.
 * @param {HTMLElement} el
 * @param {string} query
 * @param {number} current
 * @param {string | null} skip
 */
export function highlight(el, query, current, skip) {
  if (!query) return;
  const doc = /** @type {Document} */ (el.ownerDocument);
  /** @type {Text[]} */
  const nodes = [];
  const walker = doc.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (skip && n.parentElement?.closest(skip)) continue;
    nodes.push(/** @type {Text} */ (n));
  }
  const text = nodes.map((n) => n.data).join('').toLowerCase();
  /** @type {number[]} */
  const starts = [];
  for (let at = text.indexOf(query); at !== -1; at = text.indexOf(query, at + query.length)) starts.push(at);
  if (starts.length === 0) return;
  /** @type {number[]} */
  const offsets = [];
  let pos = 0;
  for (const n of nodes) {
    offsets.push(pos);
    pos += n.data.length;
  }
  // Backwards, so that splitting a text node leaves the offsets of the matches still to do valid: the
  // node keeps the text before the cut.
  for (let k = starts.length - 1; k >= 0; k--) {
    const from = starts[k];
    const to = from + query.length;
    // A match may cross span borders (a colour change inside the match): mark each piece.
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i];
      const nodeFrom = offsets[i];
      const nodeTo = nodeFrom + node.data.length;
      if (nodeTo <= from || nodeFrom >= to) continue;
      const a = Math.max(from, nodeFrom) - nodeFrom;
      const b = Math.min(to, nodeTo) - nodeFrom;
      const range = doc.createRange();
      range.setStart(node, a);
      range.setEnd(node, b);
      const mark = doc.createElement('mark');
      if (k === current) mark.className = 'current';
      range.surroundContents(mark);
    }
  }
}

/**
 * What a section's header row shows besides its line: a fold toggle before it, and after it the
 * duration (or that the section is still open) and a link to it.
 * @param {import('./sections.js').Section} s
 * @param {boolean} live whether the job still runs (an open section is then running)
 */
export function sectionHeadHtml(s, live) {
  const toggle = `<button type="button" class="fold" aria-expanded="${!s.folded}" title="${s.folded ? 'Unfold' : 'Fold'} this section" aria-label="${s.folded ? 'Unfold' : 'Fold'} ${escapeHtml(s.title)}"></button>`;
  let state = '';
  if (s.endLine === null) state = live ? 'running' : 'not closed';
  else if (s.startedAt !== null && s.finishedAt !== null) state = formatDuration(Math.max(0, s.finishedAt - s.startedAt));
  const open = s.endLine === null ? (live ? ' running' : ' unclosed') : '';
  const duration = state ? `<span class="dur${open}">${state}</span>` : '';
  const link = `<a class="sec-link" href="${escapeHtml(sectionHash(s))}" title="Link to this section">#</a>`;
  return { toggle, meta: `<span class="sec-meta">${duration}${link}</span>` };
}
