// @ts-check
/**
 * The log viewer page (`/logs/:id`): reads the job object and the log through the public /v2 API, follows
 * a running job live, and renders only the lines on screen.
 *
 * - Live: one streaming `GET /v2/logs/:id?stream=1&raw=1` read incrementally. Every request names the
 *   absolute offset it wants (`Range: bytes=N-`, the server answers 206 with `X-Log-Offset`), so a dropped
 *   connection resumes exactly where it stopped: next = X-Log-Offset + bytes received. One streaming
 *   TextDecoder spans all connections, so a UTF-8 character cut by a drop is decoded whole.
 * - Status: `GET /v2/actor-(builds|runs)/:id?waitForFinish=60` is held by the server until the job
 *   ends, so the badge changes as soon as it does, without polling.
 * - Rendering: lines are strings in a LogModel; the scroll area has the height of all lines and holds
 *   elements only for the lines in view (plus a margin); they are made per animation frame, so follow
 *   mode costs one small DOM update per frame however fast lines come.
 * - Sections (web/sections.js): folded ones have no rows; rows map to lines through it.
 */
import { LogModel, LogSearch, plainText } from './log-model.js';
import { escapeHtml, highlight, lineHtml, sectionHeadHtml } from './render.js';
import { formatDuration, formatTime } from './format.js';
import { Sections, sectionFromHash } from './sections.js';
import { keepTimestampMode, keptTimestampMode, timestampFormatter, timestampMode } from './timestamps.js';
import { getToken, saveToken as storeToken, takeTokenFromAddress } from './token.js';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED']);
const FAILED = new Set(['FAILED', 'TIMED-OUT', 'ABORTED']);
/** Browsers cap an element's height (Chrome near 33.5M px): beyond this, scroll positions are scaled. */
const MAX_HEIGHT = 8_000_000;
/** Lines rendered above and below the visible ones. */
const OVERSCAN = 30;

/** @param {string} id */
function el(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`viewer: #${id} missing`);
  return found;
}
const ui = {
  log: el('log'),
  content: el('content'),
  kind: el('kind'),
  jobId: el('job-id'),
  badge: el('badge'),
  act: el('act'),
  started: el('started'),
  finished: el('finished'),
  duration: el('duration'),
  raw: /** @type {HTMLAnchorElement} */ (el('raw-link')),
  download: /** @type {HTMLAnchorElement} */ (el('download-link')),
  forget: el('forget-token'),
  search: /** @type {HTMLInputElement} */ (el('search')),
  searchForm: el('search-form'),
  searchCount: el('search-count'),
  searchPrev: el('search-prev'),
  searchNext: el('search-next'),
  tsMode: /** @type {HTMLSelectElement} */ (el('ts-mode')),
  truncated: el('truncated'),
  followState: el('follow-state'),
  jumpTop: el('jump-top'),
  jumpEnd: el('jump-end'),
  jumpEndFloat: el('jump-end-float'),
  message: el('message'),
  messageTitle: el('message-title'),
  messageText: el('message-text'),
  auth: el('auth'),
  authText: el('auth-text'),
  tokenForm: /** @type {HTMLFormElement} */ (el('token-form')),
  tokenInput: /** @type {HTMLInputElement} */ (el('token-input')),
  tokenRemember: /** @type {HTMLInputElement} */ (el('token-remember')),
};

// ---------------------------------------------------------------------------------------------------
// Where we are: /logs/<id> on this server (possibly behind a path prefix).

const pathMatch = /^(.*)\/logs\/([^/]+)\/?$/.exec(location.pathname);
const jobId = pathMatch ? decodeURIComponent(pathMatch[2]) : '';
const apiBase = `${pathMatch ? pathMatch[1] : ''}/v2`;
const logPath = `/logs/${encodeURIComponent(jobId)}`;

// ---------------------------------------------------------------------------------------------------
// Token: web/token.js keeps it (shared with the dashboard); `#token=` is taken before `#L` links are read.

takeTokenFromAddress();
let token = getToken();

/** @param {string} value @param {boolean} remember */
function saveToken(value, remember) {
  storeToken(value, remember);
  token = value;
  ui.forget.hidden = !value;
}

// ---------------------------------------------------------------------------------------------------
// State of one load; `restart()` (after a token is entered) starts a new generation.

let gen = 0;
/** @type {Set<AbortController>} */
let controllers = new Set();
let model = new LogModel();
let search = new LogSearch(model);
let sections = new Sections();
/** @type {any} */
let job = null;
/** @type {'build' | 'run' | null} */
let kind = null;
let jobReceivedAt = 0;
let streamDone = false;
let backlogDone = false;
let firstScreenPending = true;
let reconnecting = false;
let trimmedBefore = 0;
let following = true;
let newSincePause = 0;
let currentMatch = -1;
/** @type {[number, number] | null} 1-based, inclusive */
let selection = null;
/** @type {number | null} a `#L` line to show once it has arrived */
let pendingLine = null;
/** @type {string | null} a `#section=` section to show once it has arrived */
let pendingSection = null;
/** @type {import('./sections.js').Section | null | undefined} the section open when the job failed (undefined: not looked for yet) */
let failedSection;

const metrics = { firstScreenMs: /** @type {number | null} */ (null), backlogBytes: 0, bytes: 0, reconnects: 0, requests: 0 };

class Stop extends Error {}

function controller() {
  const c = new AbortController();
  controllers.add(c);
  return c;
}

/** @param {number} ms @param {number} g */
function sleep(ms, g) {
  return new Promise((resolve, reject) => {
    setTimeout(() => (g === gen ? resolve(undefined) : reject(new Stop())), ms);
  });
}

/**
 * A request to the API with the token. 401/403 ask for a token and stop this generation; a stopped
 * generation's requests are aborted.
 * @param {string} path
 * @param {number} g
 * @param {{ headers?: Record<string, string>, method?: string, streamCtl?: AbortController }} [options]
 *   streamCtl: for a response whose body is read as it streams (the caller drops it when done)
 */
async function api(path, g, { headers = {}, method = 'GET', streamCtl } = {}) {
  if (g !== gen) throw new Stop();
  const ctl = streamCtl ?? controller();
  const h = new Headers(headers);
  if (token) h.set('Authorization', `Bearer ${token}`);
  metrics.requests++;
  let res;
  try {
    res = await fetch(`${apiBase}${path}`, { method, headers: h, cache: 'no-store', signal: ctl.signal });
  } catch (err) {
    controllers.delete(ctl);
    if (g !== gen) throw new Stop();
    throw err;
  }
  if (!streamCtl) controllers.delete(ctl);
  if (g !== gen) throw new Stop();
  if (res.status === 401 || res.status === 403) {
    askForToken(res.status, await errorMessage(res));
    throw new Stop();
  }
  return res;
}

/** @param {Response} res */
async function errorMessage(res) {
  try {
    const body = await res.json();
    return String(body?.error?.message ?? res.statusText);
  } catch {
    return res.statusText;
  }
}

// ---------------------------------------------------------------------------------------------------
// The job object and its status badge.

async function loadJob(g) {
  let delay = 500;
  for (;;) {
    try {
      const [build, run] = await Promise.all([api(`/actor-builds/${encodeURIComponent(jobId)}`, g), api(`/actor-runs/${encodeURIComponent(jobId)}`, g)]);
      for (const [res, k] of /** @type {[Response, 'build' | 'run'][]} */ ([[build, 'build'], [run, 'run']])) {
        if (res.ok) {
          kind = k;
          setJob((await res.json()).data);
          performance.mark('buildlog:job');
          return true;
        }
      }
      if (build.status === 404 && run.status === 404) {
        showMessage('Log not found', `No build or run has the id “${jobId}”. It may have been deleted, or the address is mistyped.`);
        document.body.dataset.state = 'not-found';
        return false;
      }
      setFollowState(`Server answered ${build.status}; retrying…`);
    } catch (err) {
      if (err instanceof Stop) throw err;
      setFollowState('Cannot reach the server; retrying…');
    }
    await sleep(delay, g);
    delay = Math.min(delay * 2, 10_000);
  }
}

/** Holds a request until the job ends (the server answers at the end or after 60 s), then updates. */
async function watchStatus(g) {
  let delay = 500;
  while (job && !TERMINAL.has(job.status)) {
    try {
      const res = await api(`/${kind === 'run' ? 'actor-runs' : 'actor-builds'}/${encodeURIComponent(jobId)}?waitForFinish=60`, g);
      if (!res.ok) throw new Error(`status ${res.status}`);
      setJob((await res.json()).data);
      delay = 500;
    } catch (err) {
      if (err instanceof Stop) throw err;
      await sleep(delay, g);
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

/** Once, now: after a log response ended, to know whether the job ended too. */
async function refreshJob(g) {
  const res = await api(`/${kind === 'run' ? 'actor-runs' : 'actor-builds'}/${encodeURIComponent(jobId)}`, g);
  if (res.ok) setJob((await res.json()).data);
}

/** @param {any} data */
function setJob(data) {
  const wasTerminal = job && TERMINAL.has(job.status);
  if (wasTerminal && !TERMINAL.has(data.status)) return; // an older answer that arrived late
  job = data;
  jobReceivedAt = performance.now();
  const kindLabel = kind === 'run' ? 'Run' : 'Build';
  ui.kind.textContent = kindLabel;
  ui.badge.textContent = job.status;
  ui.badge.dataset.status = job.status;
  const act = [job.actId, job.buildNumber ? `#${job.buildNumber}` : null].filter(Boolean).join(' ');
  ui.act.textContent = act;
  ui.started.textContent = formatTime(job.startedAt);
  ui.started.title = job.startedAt ?? '';
  ui.finished.textContent = job.finishedAt ? formatTime(job.finishedAt) : TERMINAL.has(job.status) ? '–' : 'running…';
  ui.finished.title = job.finishedAt ?? '';
  document.title = `${job.status} · ${kindLabel} ${jobId} · buildlog`;
  showTruncation(job.logTruncatedBytes ?? 0);
  refreshTimestamps();
  updateDuration();
  updateFollowState();
  scheduleRender();
}

/**
 * The notice a stripped read starts with once retention dropped the head of the log: from the job's
 * `logTruncatedBytes`, or from where the log response started (whichever says more).
 * @param {number} bytes
 */
function showTruncation(bytes) {
  if (bytes <= trimmedBefore) return;
  trimmedBefore = bytes;
  ui.truncated.textContent = `[buildlog] ${bytes.toLocaleString('en')} bytes at the start of this log were dropped: the server keeps only the end of each log.`;
  ui.truncated.hidden = false;
}

function durationMs() {
  if (!job) return null;
  const base = job.stats?.durationMillis;
  if (typeof base !== 'number') return null;
  return TERMINAL.has(job.status) ? base : base + (performance.now() - jobReceivedAt);
}

function updateDuration() {
  const ms = durationMs();
  ui.duration.textContent = ms === null ? '–' : formatDuration(ms);
}
setInterval(() => {
  if (job && !TERMINAL.has(job.status)) updateDuration();
}, 1000);


// ---------------------------------------------------------------------------------------------------
// The log: one streaming response, resumed by offset after a drop.

/** @param {string | null} header @returns {number | null} the end (exclusive) of the bytes stored when answered */
function rangeEnd(header) {
  const m = header ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header) : null;
  return m ? Number(m[2]) + 1 : null;
}

/**
 * How much of a running job's log is stored now (what the page has to show before it is "loaded"):
 * a HEAD with a Range is answered with its Content-Range, or 416 while the log is empty.
 * @param {number} g
 */
async function storedLength(g) {
  try {
    const res = await api(`/logs/${encodeURIComponent(jobId)}?raw=1`, g, { method: 'HEAD', headers: { Range: 'bytes=0-' } });
    if (res.status === 416) return 0;
    return rangeEnd(res.headers.get('Content-Range'));
  } catch {
    return null; // stopped, or unknown: the log then counts as loaded once its first bytes are in
  }
}

async function followLog(g) {
  let decoder = new TextDecoder('utf-8');
  /** Absolute offset of the next byte we want. */
  let next = 0;
  let first = true;
  let delay = 250;
  // A running job's stored length is asked apart; a finished log is "loaded" when its response ends.
  let backlogEnd = /** @type {number | null} */ (null);
  if (job && !TERMINAL.has(job.status)) {
    storedLength(g).then((end) => {
      if (g !== gen) return;
      backlogEnd = end ?? 0;
      if (!first && next >= backlogEnd) setBacklogDone();
    });
  }
  for (;;) {
    // A response to a request made once the job had ended holds the whole rest of the log.
    const complete = job !== null && TERMINAL.has(job.status);
    const ctl = controller();
    let res;
    try {
      // The first request sends no Range, so that it may come compressed (browsers ask for identity
      // encoding with any Range); the server says where its body starts in X-Log-Offset all the same.
      // Every resume names its offset.
      const headers = first ? {} : { Range: `bytes=${next}-` };
      res = await api(`/logs/${encodeURIComponent(jobId)}?stream=1&raw=1`, g, { headers, streamCtl: ctl });
    } catch (err) {
      if (err instanceof Stop) throw err;
      await dropped(g, delay);
      delay = Math.min(delay * 2, 5000);
      continue;
    }
    if (res.status === 416) break; // a finished log with nothing at or after `next`
    if (res.status === 404) {
      controllers.delete(ctl);
      showMessage('Log not found', `No build or run has the id “${jobId}”.`);
      return;
    }
    if (!res.ok || !res.body) {
      controllers.delete(ctl);
      await dropped(g, delay);
      delay = Math.min(delay * 2, 5000);
      continue;
    }
    const offset = Number(res.headers.get('X-Log-Offset') ?? next);
    let skip = 0;
    if (offset > next) {
      // The bytes in between fell out of the server's retention window.
      if (first) showTruncation(offset);
      else model.appendNotice(`[buildlog viewer: ${(offset - next).toLocaleString('en')} bytes logged meanwhile are no longer kept]`);
      decoder = new TextDecoder('utf-8');
    } else skip = next - offset;
    next = Math.max(next, offset);
    if (first) {
      first = false;
      performance.mark('buildlog:log-response');
      if (backlogEnd !== null && next >= backlogEnd) setBacklogDone();
    }
    setReconnecting(false);
    const reader = res.body.getReader();
    let clean = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) {
          clean = true;
          break;
        }
        let bytes = value;
        if (skip > 0) {
          const n = Math.min(skip, bytes.length);
          skip -= n;
          bytes = bytes.subarray(n);
        }
        next += bytes.length;
        metrics.bytes += bytes.length;
        const text = decoder.decode(bytes, { stream: true });
        if (text) ingest(text);
        if (!backlogDone && backlogEnd !== null && next >= backlogEnd) setBacklogDone();
        delay = 250;
      }
    } catch (err) {
      if (g !== gen) throw new Stop();
    } finally {
      controllers.delete(ctl);
    }
    if (clean) {
      if (complete) break;
      // The server ends a follow response when the job ends, or when it shuts down: ask which.
      try {
        await refreshJob(g);
      } catch (err) {
        if (err instanceof Stop) throw err;
      }
      if (job && TERMINAL.has(job.status)) continue; // one more request gets any last bytes (or a 416)
    }
    await dropped(g, delay);
    delay = Math.min(delay * 2, 5000);
  }
  const rest = decoder.decode();
  if (rest) ingest(rest);
  performance.mark('buildlog:log-end');
  streamDone = true;
  setBacklogDone();
  if (job && !TERMINAL.has(job.status)) await refreshJob(g).catch(() => undefined);
  updateFollowState();
  scheduleRender();
}

/** @param {number} g @param {number} delay */
async function dropped(g, delay) {
  metrics.reconnects++;
  setReconnecting(true);
  await sleep(delay, g);
}

/** @param {string} text */
function ingest(text) {
  const before = model.lineCount;
  model.append(text);
  sections.update(model);
  if (!following) newSincePause += model.lineCount - before;
  scheduleRender();
}

function setBacklogDone() {
  if (backlogDone) return;
  backlogDone = true;
  scheduleRender();
}

/** @param {boolean} on */
function setReconnecting(on) {
  if (reconnecting === on) return;
  reconnecting = on;
  updateFollowState();
}

// ---------------------------------------------------------------------------------------------------
// Rendering: only the lines in view.

const rootStyle = getComputedStyle(document.documentElement);
const LH = parseFloat(rootStyle.getPropertyValue('--lh')) || 20;
/** @type {Map<number, HTMLElement & { _key?: string }>} */
const rows = new Map();
let renderScheduled = false;
let gutterDigits = 0;
let contentHeight = -1;

function scheduleRender() {
  if (renderScheduled) return;
  renderScheduled = true;
  requestAnimationFrame(render);
}

function endMarkerShown() {
  return streamDone && job !== null && TERMINAL.has(job.status);
}

function totalRows() {
  return sections.rowCount(model.lineCount) + (endMarkerShown() ? 1 : 0);
}

/** Scroll geometry: virtual pixels (line i at i * LH) against the element's real, capped height. */
function geometry() {
  const clientH = ui.log.clientHeight;
  const virtualH = totalRows() * LH + LH; // a little room under the last line
  const realH = Math.min(virtualH, MAX_HEIGHT);
  const maxReal = Math.max(0, realH - clientH);
  const maxVirtual = Math.max(0, virtualH - clientH);
  return { clientH, virtualH, realH, maxReal, maxVirtual };
}

/** @param {ReturnType<typeof geometry>} g @param {number} scrollTop */
function toVirtual(g, scrollTop) {
  return g.maxReal > 0 ? (scrollTop * g.maxVirtual) / g.maxReal : 0;
}

/** @param {ReturnType<typeof geometry>} g @param {number} v */
function toReal(g, v) {
  return g.maxVirtual > 0 ? (Math.min(Math.max(v, 0), g.maxVirtual) * g.maxReal) / g.maxVirtual : 0;
}

function render() {
  renderScheduled = false;
  if (search.query) {
    search.update();
    updateSearchCount();
  }
  const digits = String(Math.max(model.lineCount, 1)).length;
  if (digits !== gutterDigits) {
    gutterDigits = digits;
    ui.content.style.setProperty('--gutter', `${digits + 1}ch`);
  }
  unfoldFailedSection();
  const target = scrollTarget(ui.log.clientHeight);
  const g = geometry();
  if (g.realH !== contentHeight) {
    contentHeight = g.realH;
    ui.content.style.height = `${g.realH}px`;
  }
  if (target) {
    // The reader then reads there, so follow mode stops.
    following = false;
    updateFollowState();
    ui.log.scrollTop = toReal(g, target.row * LH - target.above);
  }
  if (following && ui.log.scrollTop < g.maxReal) ui.log.scrollTop = g.maxReal;
  const scrollTop = ui.log.scrollTop;
  const v = toVirtual(g, scrollTop);
  const shift = v - scrollTop; // 0 unless the height is scaled
  const count = totalRows();
  const from = Math.max(0, Math.floor(v / LH) - OVERSCAN);
  const to = Math.min(count, Math.ceil((v + g.clientH) / LH) + OVERSCAN);
  const partialIndex = model.partial === '' ? -1 : model.lines.length;
  const shown = sections.rowCount(model.lineCount);
  for (const [i, row] of rows) {
    if (i < from || i >= to || row._key !== rowKey(i, shown, partialIndex)) {
      row.remove();
      rows.delete(i);
    }
  }
  /** @type {DocumentFragment | null} */
  let fragment = null;
  for (let i = from; i < to; i++) {
    let row = rows.get(i);
    if (!row) {
      row = makeRow(i, shown, partialIndex);
      rows.set(i, row);
      (fragment ??= document.createDocumentFragment()).appendChild(row);
    }
    const top = `${i * LH - shift}px`;
    if (row.style.top !== top) row.style.top = top;
  }
  if (fragment) ui.content.appendChild(fragment);
  updateJumpControls(g);
  if (firstScreenPending && backlogDone) {
    firstScreenPending = false;
    document.body.dataset.state = 'ready';
    // After this frame has been painted: what the reader sees is then on screen.
    setTimeout(() => {
      performance.mark('buildlog:first-screen');
      metrics.firstScreenMs = performance.now();
    }, 0);
  }
}

/**
 * Where a link asks the view to go, once what it names has arrived (unfolding what hides it): the row,
 * and how far below the top of the view; null when nothing asks.
 * @param {number} clientH
 */
function scrollTarget(clientH) {
  if (pendingLine !== null && pendingLine <= model.lineCount && (pendingLine <= model.lines.length || backlogDone)) {
    const line = pendingLine - 1;
    pendingLine = null;
    sections.reveal(line);
    return { row: sections.rowOf(line), above: Math.min(clientH / 3, 4 * LH) };
  }
  if (pendingSection !== null) {
    const s = sections.byName(pendingSection);
    if (s) {
      pendingSection = null;
      sections.unfold(s);
      return { row: sections.rowOf(s.line), above: LH };
    }
    if (streamDone) pendingSection = null; // no such section
  }
  return null;
}

/**
 * Unfolds the section open when the job failed (and the ones around it), once the whole log is in. An
 * open section runs to the end of the log, where the view is unless the reader moved it: the view then
 * shows the section, or its end (where it failed) if it does not fit.
 */
function unfoldFailedSection() {
  if (failedSection !== undefined || !streamDone || !job || !TERMINAL.has(job.status)) return;
  failedSection = FAILED.has(job.status) ? sections.innermostOpen() : null;
  if (failedSection) sections.unfold(failedSection);
}

/**
 * What a row shows, to know when it must be made again.
 * @param {number} i @param {number} shown rows of lines @param {number} partialIndex
 */
function rowKey(i, shown, partialIndex) {
  if (i === shown) return `end:${job?.status}`;
  const line = sections.lineAt(i);
  const head = sections.headers.has(line) ? `h${sections.version}${job && TERMINAL.has(job.status) ? 'e' : ''}` : '';
  return `${line}${line === partialIndex ? `p${model.partialVersion}` : 'c'}${isSelected(line) ? 's' : ''}${search.query ? `q${searchEpoch}` : ''}${head}`;
}

/** @param {number} i 0-based */
function isSelected(i) {
  return selection !== null && i + 1 >= selection[0] && i + 1 <= selection[1];
}
let searchEpoch = 0;

/** @param {number} i @param {number} shown rows of lines @param {number} partialIndex */
function makeRow(i, shown, partialIndex) {
  const row = /** @type {HTMLElement & { _key?: string }} */ (document.createElement('div'));
  row._key = rowKey(i, shown, partialIndex);
  if (i === shown) {
    row.className = 'row end-marker';
    row.dataset.status = job.status;
    const exit = job.exitCode === null || job.exitCode === undefined ? '' : ` · exit code ${job.exitCode}`;
    const ms = durationMs();
    const took = ms === null ? '' : ` · ${formatDuration(ms)}`;
    const message = job.statusMessage ? ` · ${job.statusMessage}` : '';
    row.textContent = `${kind === 'run' ? 'Run' : 'Build'} finished: ${job.status}${exit}${took}${message}`;
    return row;
  }
  const line = sections.lineAt(i);
  const n = line + 1;
  row.className = isSelected(line) ? 'row selected' : 'row';
  const text = model.line(line);
  const html = lineHtml(text, model.stateAt(line), tsFormat);
  const head = sections.headers.get(line);
  if (head) {
    const { toggle, meta } = sectionHeadHtml(head, !(job && TERMINAL.has(job.status)));
    // A header with no text of its own (`section_start:…:name\r\e[0K` alone) shows the section's name.
    const shownText = plainText(text, false) === '' ? `${html}${escapeHtml(head.title)}` : html;
    row.className += `${head.folded ? ' section folded' : ' section'}${head === failedSection ? ' failed' : ''}`;
    row.dataset.section = head.name;
    row.innerHTML = `<a class="ln" href="#L${n}" data-n="${n}"></a>${toggle}<span class="tx">${shownText}</span>${meta}`;
  } else {
    row.innerHTML = `<a class="ln" href="#L${n}" data-n="${n}"></a><span class="tx">${html}</span>`;
  }
  if (search.query) {
    const cur = currentMatch >= 0 && currentMatch < search.count ? search.match(currentMatch) : null;
    highlight(/** @type {HTMLElement} */ (row.querySelector('.tx')), search.query, cur && cur.line === line ? cur.nth : -1, tsMode === 'off' ? '.ts' : null);
  }
  return row;
}

/** Forces every visible row to be made again (search or selection changed). */
function invalidateRows() {
  for (const row of rows.values()) row._key = '';
  scheduleRender();
}

/** Shows a line, unfolding what hides it. @param {number} i 0-based @param {boolean} center */
function scrollToLine(i, center = true) {
  sections.reveal(i);
  const g = geometry();
  const v = sections.rowOf(i) * LH - (center ? (g.clientH - LH) / 2 : Math.min(g.clientH / 3, 4 * LH));
  ui.log.scrollTop = toReal(g, v);
  scheduleRender();
}

function atBottom() {
  return ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 4;
}

ui.log.addEventListener(
  'scroll',
  () => {
    const bottom = atBottom();
    if (bottom && !following) {
      following = true;
      newSincePause = 0;
      updateFollowState();
    } else if (!bottom && following) {
      following = false;
      newSincePause = 0;
      updateFollowState();
    }
    render();
  },
  { passive: true },
);
new ResizeObserver(() => scheduleRender()).observe(ui.log);

/** @param {ReturnType<typeof geometry>} g */
function updateJumpControls(g) {
  const top = ui.log.scrollTop <= 0;
  const bottom = ui.log.scrollTop >= g.maxReal - 4;
  ui.jumpTop.toggleAttribute('disabled', top);
  ui.jumpEnd.toggleAttribute('disabled', bottom);
  const showFloat = !following && !bottom;
  if (ui.jumpEndFloat.hidden === showFloat) ui.jumpEndFloat.hidden = !showFloat;
  const label = newSincePause > 0 ? `↓ ${newSincePause.toLocaleString('en')} new line${newSincePause === 1 ? '' : 's'} · jump to end` : '↓ Jump to end';
  if (ui.jumpEndFloat.textContent !== label) ui.jumpEndFloat.textContent = label;
}

/** @param {string} text */
function setFollowState(text) {
  ui.followState.textContent = text;
}

function updateFollowState() {
  const live = job && !TERMINAL.has(job.status) && !streamDone;
  ui.followState.dataset.mode = reconnecting ? 'reconnecting' : live ? (following ? 'live' : 'paused') : 'done';
  ui.log.dataset.following = String(following);
  if (reconnecting) setFollowState('Connection lost · reconnecting…');
  else if (live) setFollowState(following ? 'Following live output' : 'Paused · scroll to the end to follow');
  else if (streamDone) {
    const lines = model.lineCount.toLocaleString('en');
    setFollowState(`${lines} line${model.lineCount === 1 ? '' : 's'}`);
  } else setFollowState('Loading…');
}

function jumpToEnd() {
  following = true;
  newSincePause = 0;
  updateFollowState();
  scheduleRender();
  ui.log.focus({ preventScroll: true });
}

function jumpToTop() {
  following = false;
  updateFollowState();
  ui.log.scrollTop = 0;
  scheduleRender();
  ui.log.focus({ preventScroll: true });
}

ui.jumpEnd.addEventListener('click', jumpToEnd);
ui.jumpEndFloat.addEventListener('click', jumpToEnd);
ui.jumpTop.addEventListener('click', jumpToTop);

// ---------------------------------------------------------------------------------------------------
// Line links (#L12 and #L12-L20), section links (#section=<name>), folding.

/** @returns {[number, number] | null} */
function parseHash() {
  const m = /^#L(\d+)(?:-L?(\d+))?$/.exec(location.hash);
  if (!m) return null;
  const a = Number(m[1]);
  const b = m[2] ? Number(m[2]) : a;
  return a > 0 ? [Math.min(a, b), Math.max(a, b)] : null;
}

function applyHash() {
  selection = parseHash();
  invalidateRows();
  if (selection) pendingLine = selection[0];
  pendingSection = sectionFromHash(location.hash);
}

ui.content.addEventListener('click', (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  const row = /** @type {HTMLElement | null} */ (target.closest?.('.row.section'));
  if (row && target.closest('a.sec-link')) {
    // Also when the address holds this link already (then no hashchange would come).
    event.preventDefault();
    history.replaceState(null, '', /** @type {HTMLAnchorElement} */ (target.closest('a.sec-link')).getAttribute('href'));
    applyHash();
    return;
  }
  // The toggle, or the header's text (unless text is being selected, or a link in it clicked).
  const onText = target.closest('.tx') && !target.closest('a') && getSelection()?.isCollapsed !== false;
  if (row && (target.closest('button.fold') || onText)) {
    const n = Number(row.querySelector('a.ln')?.getAttribute('data-n'));
    const s = sections.headers.get(n - 1);
    if (s) {
      sections.toggle(s);
      following = false;
      updateFollowState();
      scheduleRender();
    }
    return;
  }
  const link = target.closest?.('a.ln');
  if (!(link instanceof HTMLAnchorElement)) return;
  event.preventDefault();
  const n = Number(link.dataset.n);
  selection = event.shiftKey && selection ? [Math.min(selection[0], n), Math.max(selection[0], n)] : [n, n];
  const hash = selection[0] === selection[1] ? `#L${n}` : `#L${selection[0]}-L${selection[1]}`;
  history.replaceState(null, '', hash);
  following = false;
  updateFollowState();
  invalidateRows();
});
addEventListener('hashchange', applyHash);

// ---------------------------------------------------------------------------------------------------
// Search.

function updateSearchCount() {
  const count = search.count;
  if (!search.query) ui.searchCount.textContent = '';
  else if (count === 0) ui.searchCount.textContent = 'no matches';
  else ui.searchCount.textContent = `${currentMatch >= 0 ? currentMatch + 1 : '–'} of ${count.toLocaleString('en')}`;
  ui.searchForm.dataset.result = !search.query ? '' : count ? 'found' : 'none';
}

/** @param {number} k */
function goToMatch(k) {
  const count = search.count;
  if (count === 0) {
    currentMatch = -1;
    updateSearchCount();
    return;
  }
  currentMatch = ((k % count) + count) % count;
  searchEpoch++;
  following = false;
  updateFollowState();
  scrollToLine(search.match(currentMatch).line);
  invalidateRows();
  updateSearchCount();
}

function firstVisibleLine() {
  const g = geometry();
  return sections.lineAt(Math.floor(toVirtual(g, ui.log.scrollTop) / LH));
}

let searchTimer = 0;
function runSearch() {
  clearTimeout(searchTimer);
  const changed = search.setQuery(ui.search.value, searchTs());
  if (!changed) return;
  searchEpoch++;
  currentMatch = -1;
  if (search.query) {
    const k = search.firstAtOrAfter(following ? 0 : firstVisibleLine());
    goToMatch(k === -1 ? 0 : k);
  } else {
    updateSearchCount();
    invalidateRows();
  }
}

ui.search.addEventListener('input', () => {
  clearTimeout(searchTimer);
  searchTimer = window.setTimeout(runSearch, model.chars > 1_000_000 ? 250 : 80);
});
ui.searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
});
ui.search.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    if (search.query !== ui.search.value.toLowerCase()) runSearch();
    else goToMatch(currentMatch + (event.shiftKey ? -1 : 1));
  } else if (event.key === 'Escape') {
    ui.search.value = '';
    runSearch();
    ui.log.focus({ preventScroll: true });
  }
});
ui.searchNext.addEventListener('click', () => {
  runSearch();
  goToMatch(currentMatch + 1);
});
ui.searchPrev.addEventListener('click', () => {
  runSearch();
  goToMatch(currentMatch - 1);
});
addEventListener('keydown', (event) => {
  const typing = event.target instanceof HTMLInputElement;
  if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === 'f') {
    // The browser's own find sees only the lines on screen.
    event.preventDefault();
    ui.search.focus();
    ui.search.select();
  } else if (!typing && event.key === '/') {
    event.preventDefault();
    ui.search.focus();
  } else if (!typing && event.key === 'End' && !event.shiftKey) {
    event.preventDefault();
    jumpToEnd();
  } else if (!typing && event.key === 'Home' && !event.shiftKey) {
    event.preventDefault();
    jumpToTop();
  }
});

// ---------------------------------------------------------------------------------------------------
// Timestamps: in UTC as logged, local time, time since the job started, or hidden (web/timestamps.js).

let tsMode = keptTimestampMode();
/** @type {((ts: string) => string) | null} null: as logged */
let tsFormat = null;
let tsFormatFor = '';

/** Shows the timestamps anew when the mode or the job's start (for 'elapsed') changed. */
function refreshTimestamps() {
  const start = job?.startedAt ? Date.parse(job.startedAt) : null;
  const key = `${tsMode}:${start}`;
  if (key === tsFormatFor) return;
  tsFormatFor = key;
  tsFormat = timestampFormatter(tsMode, start);
  document.body.classList.toggle('hide-ts', tsMode === 'off');
  ui.tsMode.value = tsMode;
  if (search.query) {
    search.setQuery(ui.search.value, searchTs());
    searchEpoch++;
    currentMatch = Math.min(currentMatch, search.count - 1);
    updateSearchCount();
  }
  invalidateRows();
}

/** How search sees timestamps: as shown. */
function searchTs() {
  return tsMode === 'off' ? false : (tsFormat ?? true);
}

ui.tsMode.addEventListener('change', () => {
  tsMode = timestampMode(ui.tsMode.value);
  keepTimestampMode(tsMode);
  refreshTimestamps();
});
refreshTimestamps();

// ---------------------------------------------------------------------------------------------------
// Raw and download links; with a token they are fetched with it (a plain link cannot send the header).

ui.raw.href = `${apiBase}/logs/${encodeURIComponent(jobId)}?raw=1`;
ui.download.href = `${apiBase}/logs/${encodeURIComponent(jobId)}?download=1`;

/** @param {MouseEvent} event @param {boolean} download */
async function openWithToken(event, download) {
  if (!token) return;
  event.preventDefault();
  const target = /** @type {HTMLAnchorElement} */ (event.currentTarget);
  const res = await fetch(target.href, { headers: { Authorization: `Bearer ${token}` }, cache: 'no-store' });
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
// Messages and the token prompt.

/** @param {string} title @param {string} text */
function showMessage(title, text) {
  ui.messageTitle.textContent = title;
  ui.messageText.textContent = text;
  ui.message.hidden = false;
  ui.auth.hidden = true;
  document.title = `${title} · buildlog`;
}

/** @param {number} status @param {string} serverMessage */
function askForToken(status, serverMessage) {
  if (!ui.auth.hidden) return;
  stop();
  document.body.dataset.state = 'auth';
  ui.message.hidden = true;
  ui.auth.hidden = false;
  ui.authText.textContent =
    status === 403
      ? `This token's user may not read this log (${serverMessage}). Enter a token of the log's owner.`
      : token
        ? `The token was not accepted (${serverMessage}). Enter an API token of the log's owner.`
        : "This server keeps logs private. Enter an API token of the log's owner.";
  ui.tokenInput.value = '';
  ui.tokenInput.focus();
}

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const value = ui.tokenInput.value.trim();
  if (!value) return;
  saveToken(value, ui.tokenRemember.checked);
  ui.auth.hidden = true;
  start();
});
ui.forget.addEventListener('click', () => {
  saveToken('', false);
  start();
});

// ---------------------------------------------------------------------------------------------------
// Start.

function stop() {
  gen++;
  for (const c of controllers) c.abort();
  controllers = new Set();
}

function start() {
  stop();
  const g = gen;
  model = new LogModel();
  search = new LogSearch(model);
  sections = new Sections();
  failedSection = undefined;
  job = null;
  kind = null;
  streamDone = false;
  backlogDone = false;
  firstScreenPending = true;
  reconnecting = false;
  trimmedBefore = 0;
  ui.truncated.hidden = true;
  following = true;
  newSincePause = 0;
  currentMatch = -1;
  for (const row of rows.values()) row.remove();
  rows.clear();
  contentHeight = -1;
  ui.message.hidden = true;
  document.body.dataset.state = 'loading';
  ui.forget.hidden = !token;
  applyHash();
  updateFollowState();
  const run = async () => {
    const found = await loadJob(g);
    if (!found) return;
    await Promise.all([followLog(g), watchStatus(g)]);
  };
  run().catch((err) => {
    if (err instanceof Stop) return;
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
      return model.lineCount;
    },
    get following() {
      return following;
    },
    get streamDone() {
      return streamDone;
    },
    get renderedRows() {
      return rows.size;
    },
    line: (/** @type {number} */ i) => model.line(i),
    /** The sections found: name, header line and end line (0-based), folded. */
    get sections() {
      return sections.list.map(({ name, line, endLine, folded }) => ({ name, line, endLine, folded }));
    },
  },
});

if (!jobId) showMessage('Log not found', 'The address names no log.');
else start();
