// @ts-check
/**
 * The viewer's search box: finds as the reader types (log-model.js LogSearch searches the whole log,
 * not only what is on screen, and keeps counting as lines arrive), counts, and goes to the next and
 * previous match (`Enter`, `Shift+Enter`, ↓ ↑). `Ctrl+F` and `/` open it: the browser's own find would
 * see only the lines on screen.
 */

export class SearchBox {
  /**
   * @param {{ search: HTMLInputElement, searchForm: HTMLElement, searchCount: HTMLElement, searchPrev: HTMLElement, searchNext: HTMLElement, log: HTMLElement }} ui
   * @param {{ search: () => import('./log-model.js').LogSearch, chars: () => number, withTs: () => boolean | ((ts: string) => string), firstVisibleLine: () => number, following: () => boolean, show: (line: number) => void, changed: () => void }} view
   *   the load's search; how much text it holds (a big log waits longer for the typing to pause); how
   *   timestamps show; where the view is; show a line (follow mode stops); the matches changed (rows
   *   show them)
   */
  constructor(ui, view) {
    this.ui = ui;
    this.view = view;
    /** Index of the current match, -1 for none. */
    this.current = -1;
    /** Changes whenever the matches or the current one do (rows showing them are made again). */
    this.epoch = 0;
    this.timer = 0;

    ui.search.addEventListener('input', () => {
      clearTimeout(this.timer);
      this.timer = window.setTimeout(() => this.run(), view.chars() > 1_000_000 ? 250 : 80);
    });
    ui.searchForm.addEventListener('submit', (event) => event.preventDefault());
    ui.search.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        event.preventDefault();
        if (view.search().query !== ui.search.value.toLowerCase()) this.run();
        else this.goTo(this.current + (event.shiftKey ? -1 : 1));
      } else if (event.key === 'Escape') {
        ui.search.value = '';
        this.run();
        ui.log.focus({ preventScroll: true });
      }
    });
    ui.searchNext.addEventListener('click', () => {
      this.run();
      this.goTo(this.current + 1);
    });
    ui.searchPrev.addEventListener('click', () => {
      this.run();
      this.goTo(this.current - 1);
    });
    addEventListener('keydown', (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'f') {
        event.preventDefault();
        ui.search.focus();
        ui.search.select();
      } else if (!(event.target instanceof HTMLInputElement) && event.key === '/') {
        event.preventDefault();
        ui.search.focus();
      }
    });
  }

  /** A new log: no current match. */
  reset() {
    this.current = -1;
  }

  /** The current match's line and which match in the line it is; null for none. */
  currentMatch() {
    const search = this.view.search();
    return this.current >= 0 && this.current < search.count ? search.match(this.current) : null;
  }

  /** Searches what arrived since (before a frame). */
  update() {
    if (!this.view.search().query) return;
    this.view.search().update();
    this.#showCount();
  }

  /** Searches again as timestamps now show. */
  timestampsChanged() {
    const search = this.view.search();
    if (!search.query) return;
    search.setQuery(this.ui.search.value, this.view.withTs());
    this.epoch++;
    this.current = Math.min(this.current, search.count - 1);
    this.#showCount();
  }

  run() {
    clearTimeout(this.timer);
    const search = this.view.search();
    if (!search.setQuery(this.ui.search.value, this.view.withTs())) return;
    this.epoch++;
    this.current = -1;
    if (search.query) {
      const k = search.firstAtOrAfter(this.view.following() ? 0 : this.view.firstVisibleLine());
      this.goTo(k === -1 ? 0 : k);
    } else {
      this.#showCount();
      this.view.changed();
    }
  }

  /** @param {number} k */
  goTo(k) {
    const search = this.view.search();
    const count = search.count;
    if (count === 0) {
      this.current = -1;
      this.#showCount();
      return;
    }
    this.current = ((k % count) + count) % count;
    this.epoch++;
    this.view.show(search.match(this.current).line);
    this.view.changed();
    this.#showCount();
  }

  #showCount() {
    const { ui } = this;
    const search = this.view.search();
    const count = search.count;
    if (!search.query) ui.searchCount.textContent = '';
    else if (count === 0) ui.searchCount.textContent = 'no matches';
    else ui.searchCount.textContent = `${this.current >= 0 ? this.current + 1 : '–'} of ${count.toLocaleString('en')}`;
    ui.searchForm.dataset.result = !search.query ? '' : count ? 'found' : 'none';
  }
}
