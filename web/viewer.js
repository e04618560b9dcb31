// @ts-check
/**
 * The log viewer page (`/logs/:id`): reads the job object and the log through the public /v2 API, follows
 * a running job live, and renders only the lines on screen. This module puts the parts together:
 *
 * - job-watch.js: the job object, and its end as soon as it comes (no polling);
 * - log-follow.js: the log, as one streaming response resumed by offset after a drop;
 * - log-model.js: the lines (strings; HTML only when on screen), their ANSI state, search;
 * - sections.js: the sections, which are folded, which row shows which line;
 * - scroller.js and log-rows.js: virtual scrolling, and what each row shows;
 * - line-links.js, search-box.js: `#L` and `#section=` links; the search box;
 * - token.js, token-prompt.js: the token of a private server (shared with the dashboard).
 */
import { LogModel, LogSearch } from './log-model.js';
import { Sections } from './sections.js';
import { formatDuration, formatTime } from './format.js';
import { keepTimestampMode, keptTimestampMode, timestampFormatter, timestampMode } from './timestamps.js';
import { apiFetch } from './api.js';
import { element } from './page.js';
import { getToken, takeTokenFromAddress } from './token.js';
import { TokenPrompt } from './token-prompt.js';
import { Requests, Stop } from './requests.js';
import { JobWatch } from './job-watch.js';
import { LogFollow } from './log-follow.js';
import { Scroller } from './scroller.js';
import { LogRows } from './log-rows.js';
import { LineLinks } from './line-links.js';
import { SearchBox } from './search-box.js';

const ui = {
  log: element('log'),
  content: element('content'),
  kind: element('kind'),
  jobId: element('job-id'),
  badge: element('badge'),
  act: element('act'),
  started: element('started'),
  finished: element('finished'),
  duration: element('duration'),
  raw: /** @type {HTMLAnchorElement} */ (element('raw-link')),
  download: /** @type {HTMLAnchorElement} */ (element('download-link')),
  search: /** @type {HTMLInputElement} */ (element('search')),
  searchForm: element('search-form'),
  searchCount: element('search-count'),
  searchPrev: element('search-prev'),
  searchNext: element('search-next'),
  tsMode: /** @type {HTMLSelectElement} */ (element('ts-mode')),
  truncated: element('truncated'),
  followState: element('follow-state'),
  jumpTop: element('jump-top'),
  jumpEnd: element('jump-end'),
  jumpEndFloat: element('jump-end-float'),
  message: element('message'),
  messageTitle: element('message-title'),
  messageText: element('message-text'),
};

// Where we are: /logs/<id> on this server (possibly behind a path prefix).
const pathMatch = /^(.*)\/logs\/([^/]+)\/?$/.exec(location.pathname);
const jobId = pathMatch ? decodeURIComponent(pathMatch[2]) : '';
const apiBase = `${pathMatch ? pathMatch[1] : ''}/v2`;

// `#token=` is taken before `#L` links are read.
takeTokenFromAddress();

/** For tests and the bench: how long the page took and what it fetched (over all loads). */
const metrics = { firstScreenMs: /** @type {number | null} */ (null), backlogBytes: 0, bytes: 0, reconnects: 0, requests: 0 };

/** One load of the job and its log; a new one starts after a token is entered. */
class Load {
  constructor() {
    this.requests = new Requests(apiBase, metrics, askForToken);
    this.model = new LogModel();
    this.search = new LogSearch(this.model);
    this.sections = new Sections();
    /** Calls `fn` while this load is the page's (an answer to a stopped one may still arrive). @type {<A extends any[]>(fn: (...args: A) => void) => (...args: A) => void} */
    const current = (fn) => (...args) => {
      if (!this.requests.stopped) fn(...args);
    };
    this.jobWatch = new JobWatch(this.requests, jobId, { changed: current(showJob), retrying: current((why) => (ui.followState.textContent = why)) });
    this.follow = new LogFollow(this.requests, this.jobWatch, metrics, {
      text: current(ingest),
      skipped: current((from, to, first) => {
        if (first) showTruncation(to);
        else this.model.appendNotice(`[buildlog viewer: ${(to - from).toLocaleString('en')} bytes logged meanwhile are no longer kept]`);
      }),
      changed: current(() => {
        updateFollowState();
        scroller.schedule();
      }),
      notFound: current(() => showMessage('Log not found', `No build or run has the id “${jobId}”.`)),
    });
    this.firstScreenPending = true;
    /** Bytes at the start of the log that the server no longer keeps (the notice above the log says). */
    this.trimmedBefore = 0;
  }
}
let load = new Load();

/** @type {LogRows} */
const rows = new LogRows({
  shown: () => load,
  selected: (line) => links.selected(line),
  match: () => ({ epoch: searchBox.epoch, current: searchBox.currentMatch() }),
  timestamps: () => ({ format: timestamps.format, hidden: timestamps.mode === 'off' }),
});
/** @type {Scroller} */
const scroller = new Scroller(
  ui,
  {
    count: () => rows.count(),
    lines: () => load.model.lineCount,
    prepare: (clientHeight, lineHeight) => {
      searchBox.update();
      rows.unfoldFailedSection();
      const target = links.target(clientHeight, lineHeight);
      rows.prepare();
      return target;
    },
    key: (i) => rows.key(i),
    make: (i) => rows.make(i),
    shown: firstScreenShown,
  },
  () => updateFollowState(),
);
/** @type {LineLinks} */
const links = new LineLinks(ui.content, {
  shown: () => load,
  changed: () => scroller.invalidate(),
  moved: () => {
    scroller.stopFollowing();
    scroller.schedule();
  },
});
/** @type {SearchBox} */
const searchBox = new SearchBox(ui, {
  search: () => load.search,
  chars: () => load.model.chars,
  withTs: () => (timestamps.mode === 'off' ? false : (timestamps.format ?? true)),
  firstVisibleLine: () => load.sections.lineAt(scroller.firstVisibleRow()),
  following: () => scroller.following,
  show: (line) => {
    scroller.stopFollowing();
    load.sections.reveal(line);
    scroller.scrollToRow(load.sections.rowOf(line));
  },
  changed: () => scroller.invalidate(),
});
const prompt = new TokenPrompt({ entered: start, forgotten: start });

/** @param {string} text */
function ingest(text) {
  const before = load.model.lineCount;
  load.model.append(text);
  load.sections.update(load.model);
  scroller.arrived(load.model.lineCount - before);
}

/** After each frame: the first screen is up once what was stored when the page opened is in. */
function firstScreenShown() {
  if (!load.firstScreenPending || !load.follow.backlogDone) return;
  load.firstScreenPending = false;
  document.body.dataset.state = 'ready';
  // After this frame has been painted: what the reader sees is then on screen.
  setTimeout(() => {
    performance.mark('buildlog:first-screen');
    metrics.firstScreenMs = performance.now();
  }, 0);
}

// ---------------------------------------------------------------------------------------------------
// The header: the job's status, times and duration; the truncation notice; the follow state.

function showJob() {
  const { job, kind } = load.jobWatch;
  const kindLabel = kind === 'run' ? 'Run' : 'Build';
  ui.kind.textContent = kindLabel;
  ui.badge.textContent = job.status;
  ui.badge.dataset.status = job.status;
  ui.act.textContent = [job.actId, job.buildNumber ? `#${job.buildNumber}` : null].filter(Boolean).join(' ');
  ui.started.textContent = formatTime(job.startedAt);
  ui.started.title = job.startedAt ?? '';
  ui.finished.textContent = job.finishedAt ? formatTime(job.finishedAt) : load.jobWatch.terminal ? '–' : 'running…';
  ui.finished.title = job.finishedAt ?? '';
  document.title = `${job.status} · ${kindLabel} ${jobId} · buildlog`;
  showTruncation(job.logTruncatedBytes ?? 0);
  refreshTimestamps();
  updateDuration();
  updateFollowState();
  scroller.schedule();
}

/**
 * The notice a stripped read starts with once retention dropped the head of the log: from the job's
 * `logTruncatedBytes`, or from where the log response started (whichever says more).
 * @param {number} bytes
 */
function showTruncation(bytes) {
  if (bytes <= load.trimmedBefore) return;
  load.trimmedBefore = bytes;
  ui.truncated.textContent = `[buildlog] ${bytes.toLocaleString('en')} bytes at the start of this log were dropped: the server keeps only the end of each log.`;
  ui.truncated.hidden = false;
}

function updateDuration() {
  const ms = load.jobWatch.durationMs();
  ui.duration.textContent = ms === null ? '–' : formatDuration(ms);
}
setInterval(() => {
  if (load.jobWatch.job && !load.jobWatch.terminal) updateDuration();
}, 1000);

function updateFollowState() {
  const { jobWatch, follow, model } = load;
  const live = jobWatch.job && !jobWatch.terminal && !follow.done;
  const { following } = scroller;
  ui.followState.dataset.mode = follow.reconnecting ? 'reconnecting' : live ? (following ? 'live' : 'paused') : 'done';
  ui.log.dataset.following = String(following);
  let text = 'Loading…';
  if (follow.reconnecting) text = 'Connection lost · reconnecting…';
  else if (live) text = following ? 'Following live output' : 'Paused · scroll to the end to follow';
  else if (follow.done) text = `${model.lineCount.toLocaleString('en')} line${model.lineCount === 1 ? '' : 's'}`;
  ui.followState.textContent = text;
}

// ---------------------------------------------------------------------------------------------------
// Timestamps: in UTC as logged, local time, time since the job started, or hidden (web/timestamps.js).

const timestamps = {
  mode: keptTimestampMode(),
  /** @type {((ts: string) => string) | null} null: as logged */
  format: null,
  /** The mode and job start `format` was made for. */
  madeFor: '',
};

/** Shows the timestamps anew when the mode or the job's start (for 'elapsed') changed. */
function refreshTimestamps() {
  const job = load.jobWatch.job;
  const start = job?.startedAt ? Date.parse(job.startedAt) : null;
  const key = `${timestamps.mode}:${start}`;
  if (key === timestamps.madeFor) return;
  timestamps.madeFor = key;
  timestamps.format = timestampFormatter(timestamps.mode, start);
  document.body.classList.toggle('hide-ts', timestamps.mode === 'off');
  ui.tsMode.value = timestamps.mode;
  searchBox.timestampsChanged();
  scroller.invalidate();
}

ui.tsMode.addEventListener('change', () => {
  timestamps.mode = timestampMode(ui.tsMode.value);
  keepTimestampMode(timestamps.mode);
  refreshTimestamps();
});
refreshTimestamps();

// ---------------------------------------------------------------------------------------------------
// Raw and download links; with a token they are fetched with it (a plain link cannot send the header).

ui.raw.href = `${apiBase}/logs/${encodeURIComponent(jobId)}?raw=1`;
ui.download.href = `${apiBase}/logs/${encodeURIComponent(jobId)}?download=1`;

/** @param {MouseEvent} event @param {boolean} download */
async function openWithToken(event, download) {
  if (!getToken()) return;
  event.preventDefault();
  const res = await apiFetch(/** @type {HTMLAnchorElement} */ (event.currentTarget).href);
  if (!res.ok) return;
  const url = URL.createObjectURL(new Blob([await res.arrayBuffer()], { type: 'text/plain;charset=utf-8' }));
  const a = document.createElement('a');
  a.href = url;
  if (download) a.download = `${jobId}.log`;
  else a.target = '_blank';
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
ui.raw.addEventListener('click', (e) => openWithToken(e, false));
ui.download.addEventListener('click', (e) => openWithToken(e, true));

// ---------------------------------------------------------------------------------------------------
// Messages, the token prompt, start.

/** @param {string} title @param {string} text */
function showMessage(title, text) {
  ui.messageTitle.textContent = title;
  ui.messageText.textContent = text;
  ui.message.hidden = false;
  prompt.hide();
  document.title = `${title} · buildlog`;
}

/** @param {number} status @param {string} serverMessage */
function askForToken(status, serverMessage) {
  if (prompt.shown) return;
  load.requests.stop();
  ui.message.hidden = true;
  prompt.show(
    status === 403
      ? `This token's user may not read this log (${serverMessage}). Enter a token of the log's owner.`
      : getToken()
        ? `The token was not accepted (${serverMessage}). Enter an API token of the log's owner.`
        : "This server keeps logs private. Enter an API token of the log's owner.",
  );
}

function start() {
  load.requests.stop();
  load = new Load();
  rows.reset();
  searchBox.reset();
  scroller.reset();
  ui.truncated.hidden = true;
  ui.message.hidden = true;
  document.body.dataset.state = 'loading';
  links.apply();
  updateFollowState();
  const { jobWatch, follow, requests } = load;
  const run = async () => {
    if (!(await jobWatch.find())) {
      showMessage('Log not found', `No build or run has the id “${jobId}”. It may have been deleted, or the address is mistyped.`);
      document.body.dataset.state = 'not-found';
      return;
    }
    await Promise.all([follow.run(), jobWatch.watch()]);
  };
  run().catch((err) => {
    if (err instanceof Stop || requests.stopped) return;
    console.error(err);
    showMessage('Something went wrong', String(err?.message ?? err));
  });
}

ui.jobId.textContent = jobId;
ui.log.focus({ preventScroll: true });

/** For tests and the bench: what the page holds and how long it took. */
Object.defineProperty(window, 'buildlogViewer', {
  value: {
    metrics,
    get lineCount() {
      return load.model.lineCount;
    },
    get following() {
      return scroller.following;
    },
    get streamDone() {
      return load.follow.done;
    },
    get renderedRows() {
      return scroller.rows.size;
    },
    line: (/** @type {number} */ i) => load.model.line(i),
    /** The sections found: name, header line and end line (0-based), folded. */
    get sections() {
      return load.sections.list.map(({ name, line, endLine, folded }) => ({ name, line, endLine, folded }));
    },
  },
});

if (!jobId) showMessage('Log not found', 'The address names no log.');
else start();
