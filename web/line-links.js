// @ts-check
/**
 * Links into the log: a line (`#L12`), a range of lines (`#L12-L20`: click a line number, shift-click
 * another), a section (`#section=<name>`). What a link names is shown once it has arrived, unfolding
 * what hides it. Clicking a section header (its toggle, or its text) folds or unfolds it.
 */
import { sectionFromHash } from './sections.js';

export class LineLinks {
  /**
   * @param {HTMLElement} content the rows' container
   * @param {{ shown: () => { model: import('./log-model.js').LogModel, sections: import('./sections.js').Sections, follow: import('./log-follow.js').LogFollow }, changed: () => void, moved: () => void }} view
   *   what the page shows now; the selection changed (rows show it); the reader chose where to read
   *   or folded a section (follow mode stops, the rows are shown again)
   */
  constructor(content, view) {
    this.view = view;
    /** @type {[number, number] | null} 1-based, inclusive */
    this.selection = null;
    /** @type {number | null} a `#L` line to show once it has arrived */
    this.pendingLine = null;
    /** @type {string | null} a `#section=` section to show once it has arrived */
    this.pendingSection = null;
    content.addEventListener('click', (event) => this.#clicked(event));
    addEventListener('hashchange', () => this.apply());
  }

  /** Takes the link in the address. */
  apply() {
    const m = /^#L(\d+)(?:-L?(\d+))?$/.exec(location.hash);
    const a = m ? Number(m[1]) : 0;
    const b = m?.[2] ? Number(m[2]) : a;
    this.selection = a > 0 ? [Math.min(a, b), Math.max(a, b)] : null;
    this.view.changed();
    if (this.selection) this.pendingLine = this.selection[0];
    this.pendingSection = sectionFromHash(location.hash);
  }

  /** @param {number} line 0-based */
  selected(line) {
    return this.selection !== null && line + 1 >= this.selection[0] && line + 1 <= this.selection[1];
  }

  /**
   * Where a link asks the view to go, once what it names has arrived (unfolding what hides it): the row,
   * and how far below the top of the view; null when nothing asks.
   * @param {number} clientHeight @param {number} lineHeight
   */
  target(clientHeight, lineHeight) {
    const { model, sections, follow } = this.view.shown();
    if (this.pendingLine !== null && this.pendingLine <= model.lineCount && (this.pendingLine <= model.lines.length || follow.backlogDone)) {
      const line = this.pendingLine - 1;
      this.pendingLine = null;
      sections.reveal(line);
      return { row: sections.rowOf(line), above: Math.min(clientHeight / 3, 4 * lineHeight) };
    }
    if (this.pendingSection !== null) {
      const s = sections.byName(this.pendingSection);
      if (s) {
        this.pendingSection = null;
        sections.unfold(s);
        return { row: sections.rowOf(s.line), above: lineHeight };
      }
      if (follow.done) this.pendingSection = null; // no such section
    }
    return null;
  }

  /** @param {MouseEvent} event */
  #clicked(event) {
    const target = /** @type {HTMLElement} */ (event.target);
    const row = /** @type {HTMLElement | null} */ (target.closest?.('.row.section'));
    if (row && target.closest('a.sec-link')) {
      // Also when the address holds this link already (then no hashchange would come).
      event.preventDefault();
      history.replaceState(null, '', /** @type {HTMLAnchorElement} */ (target.closest('a.sec-link')).getAttribute('href'));
      this.apply();
      return;
    }
    // The toggle, or the header's text (unless text is being selected, or a link in it clicked).
    const onText = target.closest('.tx') && !target.closest('a') && getSelection()?.isCollapsed !== false;
    if (row && (target.closest('button.fold') || onText)) {
      const { sections } = this.view.shown();
      const s = sections.headers.get(Number(row.querySelector('a.ln')?.getAttribute('data-n')) - 1);
      if (s) {
        sections.toggle(s);
        this.view.moved();
      }
      return;
    }
    const link = target.closest?.('a.ln');
    if (!(link instanceof HTMLAnchorElement)) return;
    event.preventDefault();
    const n = Number(link.dataset.n);
    const sel = this.selection;
    this.selection = event.shiftKey && sel ? [Math.min(sel[0], n), Math.max(sel[0], n)] : [n, n];
    const [from, to] = this.selection;
    history.replaceState(null, '', from === to ? `#L${n}` : `#L${from}-L${to}`);
    this.view.moved();
    this.view.changed();
  }
}
