// @ts-check
/**
 * Virtual scrolling of the log: the scroll area has the height of all rows and holds elements only for
 * the rows in view (plus a margin), made once per animation frame however fast lines come. Browsers cap
 * an element's height, so past MAX_HEIGHT scroll positions are scaled. Follow mode keeps the view at the
 * end while new rows arrive; scrolling away from the end pauses it.
 *
 * What a row shows is up to `rows` (log-rows.js); this module knows only their count and keys.
 */

/** Browsers cap an element's height (Chrome near 33.5M px): beyond this, scroll positions are scaled. */
const MAX_HEIGHT = 8_000_000;
/** Rows rendered above and below the visible ones. */
const OVERSCAN = 30;

/**
 * @typedef {object} RowSource
 * @property {() => number} count rows in all
 * @property {() => number} lines lines in the log (for the width of the line numbers)
 * @property {(clientHeight: number, lineHeight: number) => { row: number, above: number } | null} prepare
 *   called before each frame; may ask to show a row (`above` pixels below the top of the view)
 * @property {(i: number) => string} key what row `i` shows: a row is made again when its key changes
 * @property {(i: number) => HTMLElement} make
 * @property {() => void} shown called after each frame
 */

export class Scroller {
  /**
   * @param {{ log: HTMLElement, content: HTMLElement, jumpTop: HTMLElement, jumpEnd: HTMLElement, jumpEndFloat: HTMLElement }} ui
   * @param {RowSource} rows
   * @param {() => void} followChanged called when follow mode starts or stops
   */
  constructor(ui, rows, followChanged) {
    this.ui = ui;
    this.source = rows;
    this.followChanged = followChanged;
    this.lineHeight = parseFloat(getComputedStyle(document.documentElement).getPropertyValue('--lh')) || 20;
    /** @type {Map<number, HTMLElement & { _key?: string }>} */
    this.rows = new Map();
    this.scheduled = false;
    this.gutterDigits = 0;
    this.contentHeight = -1;
    this.following = true;
    /** Lines that arrived while follow mode was paused. */
    this.newSincePause = 0;

    ui.log.addEventListener('scroll', () => this.#scrolled(), { passive: true });
    new ResizeObserver(() => this.schedule()).observe(ui.log);
    ui.jumpEnd.addEventListener('click', () => this.jumpToEnd());
    ui.jumpEndFloat.addEventListener('click', () => this.jumpToEnd());
    ui.jumpTop.addEventListener('click', () => this.jumpToTop());
    addEventListener('keydown', (event) => {
      if (event.target instanceof HTMLInputElement || event.shiftKey) return;
      if (event.key === 'End') this.jumpToEnd();
      else if (event.key === 'Home') this.jumpToTop();
      else return;
      event.preventDefault();
    });
  }

  /** A new log: no rows, following its end. */
  reset() {
    for (const row of this.rows.values()) row.remove();
    this.rows.clear();
    this.contentHeight = -1;
    this.following = true;
    this.newSincePause = 0;
  }

  schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.render());
  }

  /** Makes every visible row again (what rows show changed: search, selection, timestamps). */
  invalidate() {
    for (const row of this.rows.values()) row._key = '';
    this.schedule();
  }

  /** @param {number} n lines that arrived */
  arrived(n) {
    if (!this.following) this.newSincePause += n;
    this.schedule();
  }

  stopFollowing() {
    if (!this.following) return;
    this.following = false;
    this.followChanged();
  }

  jumpToEnd() {
    this.following = true;
    this.newSincePause = 0;
    this.followChanged();
    this.schedule();
    this.ui.log.focus({ preventScroll: true });
  }

  jumpToTop() {
    this.following = false;
    this.followChanged();
    this.ui.log.scrollTop = 0;
    this.schedule();
    this.ui.log.focus({ preventScroll: true });
  }

  /** The first row in view. */
  firstVisibleRow() {
    return Math.floor(this.#toVirtual(this.#geometry(), this.ui.log.scrollTop) / this.lineHeight);
  }

  /** Scrolls row `i` into view: to the middle, or a little below the top. @param {number} i @param {boolean} center */
  scrollToRow(i, center = true) {
    const g = this.#geometry();
    const lh = this.lineHeight;
    this.ui.log.scrollTop = this.#toReal(g, i * lh - (center ? (g.clientH - lh) / 2 : Math.min(g.clientH / 3, 4 * lh)));
    this.schedule();
  }

  render() {
    this.scheduled = false;
    const { ui, source, lineHeight: lh } = this;
    const digits = String(Math.max(source.lines(), 1)).length;
    if (digits !== this.gutterDigits) {
      this.gutterDigits = digits;
      ui.content.style.setProperty('--gutter', `${digits + 1}ch`);
    }
    const target = source.prepare(ui.log.clientHeight, lh);
    const g = this.#geometry();
    if (g.realH !== this.contentHeight) {
      this.contentHeight = g.realH;
      ui.content.style.height = `${g.realH}px`;
    }
    if (target) {
      // The reader then reads there, so follow mode stops.
      this.stopFollowing();
      ui.log.scrollTop = this.#toReal(g, target.row * lh - target.above);
    }
    if (this.following && ui.log.scrollTop < g.maxReal) ui.log.scrollTop = g.maxReal;
    const scrollTop = ui.log.scrollTop;
    const v = this.#toVirtual(g, scrollTop);
    const shift = v - scrollTop; // 0 unless the height is scaled
    const count = source.count();
    const from = Math.max(0, Math.floor(v / lh) - OVERSCAN);
    const to = Math.min(count, Math.ceil((v + g.clientH) / lh) + OVERSCAN);
    for (const [i, row] of this.rows) {
      if (i < from || i >= to || row._key !== source.key(i)) {
        row.remove();
        this.rows.delete(i);
      }
    }
    /** @type {DocumentFragment | null} */
    let fragment = null;
    for (let i = from; i < to; i++) {
      let row = this.rows.get(i);
      if (!row) {
        row = /** @type {HTMLElement & { _key?: string }} */ (source.make(i));
        row._key = source.key(i);
        this.rows.set(i, row);
        (fragment ??= document.createDocumentFragment()).appendChild(row);
      }
      const top = `${i * lh - shift}px`;
      if (row.style.top !== top) row.style.top = top;
    }
    if (fragment) ui.content.appendChild(fragment);
    this.#updateJumpControls(g);
    source.shown();
  }

  #scrolled() {
    const { log } = this.ui;
    const bottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    if (bottom !== this.following) {
      this.following = bottom;
      this.newSincePause = 0;
      this.followChanged();
    }
    this.render();
  }

  /** Scroll geometry: virtual pixels (row i at i * lineHeight) against the element's real, capped height. */
  #geometry() {
    const clientH = this.ui.log.clientHeight;
    const virtualH = this.source.count() * this.lineHeight + this.lineHeight; // a little room under the last row
    const realH = Math.min(virtualH, MAX_HEIGHT);
    return { clientH, virtualH, realH, maxReal: Math.max(0, realH - clientH), maxVirtual: Math.max(0, virtualH - clientH) };
  }

  /** @param {{ maxReal: number, maxVirtual: number }} g @param {number} scrollTop */
  #toVirtual(g, scrollTop) {
    return g.maxReal > 0 ? (scrollTop * g.maxVirtual) / g.maxReal : 0;
  }

  /** @param {{ maxReal: number, maxVirtual: number }} g @param {number} v */
  #toReal(g, v) {
    return g.maxVirtual > 0 ? (Math.min(Math.max(v, 0), g.maxVirtual) * g.maxReal) / g.maxVirtual : 0;
  }

  /** @param {{ maxReal: number }} g */
  #updateJumpControls(g) {
    const { ui } = this;
    const top = ui.log.scrollTop <= 0;
    const bottom = ui.log.scrollTop >= g.maxReal - 4;
    ui.jumpTop.toggleAttribute('disabled', top);
    ui.jumpEnd.toggleAttribute('disabled', bottom);
    const showFloat = !this.following && !bottom;
    if (ui.jumpEndFloat.hidden === showFloat) ui.jumpEndFloat.hidden = !showFloat;
    const n = this.newSincePause;
    const label = n > 0 ? `↓ ${n.toLocaleString('en')} new line${n === 1 ? '' : 's'} · jump to end` : '↓ Jump to end';
    if (ui.jumpEndFloat.textContent !== label) ui.jumpEndFloat.textContent = label;
  }
}
