// @ts-check
/**
 * What each row of the viewer shows: a line of the log (its number, timestamp, text; a section's header
 * with its fold toggle, duration and link), or the end marker once the job has ended. Folded sections
 * have no rows (sections.js maps rows to lines). Rows are keyed by what they show, so that the scroller
 * (scroller.js) makes one again only when that changed.
 */
import { plainText } from './log-model.js';
import { escapeHtml, highlight, lineHtml, sectionHeadHtml } from './render.js';
import { formatDuration } from './format.js';

/**
 * @typedef {object} Shown what the rows show
 * @property {import('./log-model.js').LogModel} model
 * @property {import('./log-model.js').LogSearch} search
 * @property {import('./sections.js').Sections} sections
 * @property {import('./job-watch.js').JobWatch} jobWatch
 * @property {import('./log-follow.js').LogFollow} follow
 */

export class LogRows {
  /**
   * @param {{ shown: () => Shown, selected: (line: number) => boolean, match: () => { epoch: number, current: { line: number, nth: number } | null }, timestamps: () => { format: ((ts: string) => string) | null, hidden: boolean } }} view
   *   what the page shows now; whether a line is selected (a `#L` link); the search's current match,
   *   and a number that changes whenever the matches do; how timestamps show
   */
  constructor(view) {
    this.view = view;
    /** @type {import('./sections.js').Section | null | undefined} the section open when the job failed (undefined: not looked for yet) */
    this.failedSection = undefined;
    // Per frame (prepare): the rows that show lines, and the partial last line's index (-1: none).
    this.lineRows = 0;
    this.partialIndex = -1;
  }

  /** A new log. */
  reset() {
    this.failedSection = undefined;
  }

  count() {
    const { model, sections } = this.view.shown();
    return sections.rowCount(model.lineCount) + (this.#endShown() ? 1 : 0);
  }

  /**
   * Unfolds the section open when the job failed (and the ones around it), once the whole log is in.
   * An open section runs to the end of the log, where the view is unless the reader moved it: the view
   * then shows the section, or its end (where it failed) if it does not fit.
   */
  unfoldFailedSection() {
    const { sections, jobWatch, follow } = this.view.shown();
    if (this.failedSection !== undefined || !follow.done || !jobWatch.terminal) return;
    this.failedSection = jobWatch.failed ? sections.innermostOpen() : null;
    if (this.failedSection) sections.unfold(this.failedSection);
  }

  /** Before a frame, once the folds are settled: notes what `key` and `make` use. */
  prepare() {
    const { model, sections } = this.view.shown();
    this.lineRows = sections.rowCount(model.lineCount);
    this.partialIndex = model.partial === '' ? -1 : model.lines.length;
  }

  /** What row `i` shows (valid after `prepare`). @param {number} i */
  key(i) {
    const { model, search, sections, jobWatch } = this.view.shown();
    if (i === this.lineRows) return `end:${jobWatch.job?.status}`;
    const line = sections.lineAt(i);
    const head = sections.headers.has(line) ? `h${sections.version}${jobWatch.terminal ? 'e' : ''}` : '';
    const partial = line === this.partialIndex ? `p${model.partialVersion}` : 'c';
    return `${line}${partial}${this.view.selected(line) ? 's' : ''}${search.query ? `q${this.view.match().epoch}` : ''}${head}`;
  }

  /** @param {number} i */
  make(i) {
    const { model, search, sections, jobWatch } = this.view.shown();
    const row = document.createElement('div');
    if (i === this.lineRows) {
      const { job } = jobWatch;
      row.className = 'row end-marker';
      row.dataset.status = job.status;
      const exit = job.exitCode === null || job.exitCode === undefined ? '' : ` · exit code ${job.exitCode}`;
      const ms = jobWatch.durationMs();
      const took = ms === null ? '' : ` · ${formatDuration(ms)}`;
      const message = job.statusMessage ? ` · ${job.statusMessage}` : '';
      row.textContent = `${jobWatch.kind === 'run' ? 'Run' : 'Build'} finished: ${job.status}${exit}${took}${message}`;
      return row;
    }
    const line = sections.lineAt(i);
    const n = line + 1;
    row.className = this.view.selected(line) ? 'row selected' : 'row';
    const text = model.line(line);
    const timestamps = this.view.timestamps();
    const html = lineHtml(text, model.stateAt(line), timestamps.format);
    const head = sections.headers.get(line);
    if (head) {
      const { toggle, meta } = sectionHeadHtml(head, !jobWatch.terminal);
      // A header with no text of its own (`section_start:…:name\r\e[0K` alone) shows the section's name.
      const shownText = plainText(text, false) === '' ? `${html}${escapeHtml(head.title)}` : html;
      row.className += `${head.folded ? ' section folded' : ' section'}${head === this.failedSection ? ' failed' : ''}`;
      row.dataset.section = head.name;
      row.innerHTML = `<a class="ln" href="#L${n}" data-n="${n}"></a>${toggle}<span class="tx">${shownText}</span>${meta}`;
    } else {
      row.innerHTML = `<a class="ln" href="#L${n}" data-n="${n}"></a><span class="tx">${html}</span>`;
    }
    if (search.query) {
      const { current } = this.view.match();
      highlight(/** @type {HTMLElement} */ (row.querySelector('.tx')), search.query, current && current.line === line ? current.nth : -1, timestamps.hidden ? '.ts' : null);
    }
    return row;
  }

  /** The end marker shows once the job ended and all its log is in. */
  #endShown() {
    const { jobWatch, follow } = this.view.shown();
    return follow.done && jobWatch.terminal;
  }
}
