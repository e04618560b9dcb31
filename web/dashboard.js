// @ts-check
/**
 * The dashboard (`/`): the token user's recent builds and runs, newest first, paged, filtered by kind,
 * actor and status, and a search across all their logs. Everything is read through the public /v2 API.
 *
 * Live updates: the page polls the list endpoints once a second while it is visible. Polling was chosen
 * over a push stream of job events: it needs no new protocol (the lists are Apify's own endpoints, and
 * work unchanged through proxies and on several nodes, since they read the store), its cost is one
 * indexed query per list per second per open dashboard, and a status change shows within a second.
 * A hidden tab stops polling and catches up when it is shown again.
 */
import { formatDuration, formatTime } from './format.js';
import { TERMINAL, apiFetch, errorMessage } from './api.js';
import { element as el } from './page.js';
import { getToken, takeTokenFromAddress } from './token.js';
import { TokenPrompt } from './token-prompt.js';

const PAGE = 50;
const POLL_MS = 1000;
const MAX_LIST = 1000;

const ui = {
  rows: el('rows'),
  empty: el('empty'),
  jobs: el('jobs'),
  kind: /** @type {HTMLSelectElement} */ (el('kind')),
  actor: /** @type {HTMLInputElement} */ (el('actor')),
  status: /** @type {HTMLSelectElement} */ (el('status')),
  live: el('live'),
  newer: /** @type {HTMLButtonElement} */ (el('newer')),
  older: /** @type {HTMLButtonElement} */ (el('older')),
  page: el('page'),
  user: el('user'),
  searchForm: el('search-form'),
  search: /** @type {HTMLInputElement} */ (el('search')),
  results: el('results'),
  resultsTitle: el('results-title'),
  hits: el('hits'),
  moreHits: el('more-hits'),
  closeResults: el('close-results'),
};

// The dashboard may sit under a path prefix: the API and the viewer are beside it.
const base = location.pathname.replace(/\/$/, '');
const apiBase = `${base}/v2`;
/** @param {string} id @param {number} [line] */
const logLink = (id, line) => `${base}/logs/${encodeURIComponent(id)}${line ? `#L${line}` : ''}`;

class NeedToken extends Error {}

/** @param {string} path */
async function api(path) {
  const res = await apiFetch(`${apiBase}${path}`);
  if (res.status === 401 || res.status === 403) {
    askForToken(await errorMessage(res));
    throw new NeedToken();
  }
  return res;
}

// ---------------------------------------------------------------------------------------------------
// The list: one page of builds, runs, or both merged by start time.

const view = { page: 0, kind: '', actor: '', status: '' };
/** Bumped by every change of the view, so that an answer to an older view is dropped. */
let viewGen = 0;
let loaded = 0;

/**
 * @param {'build' | 'run'} kind @param {number} offset @param {number} limit
 * @returns {Promise<{ total: number, items: any[] }>}
 */
async function fetchList(kind, offset, limit) {
  const params = new URLSearchParams({ desc: '1', offset: String(offset), limit: String(limit) });
  if (view.status) params.set('status', view.status);
  const path = view.actor ? `/acts/${encodeURIComponent(view.actor.replace('/', '~'))}/${kind}s` : `/actor-${kind}s`;
  const res = await api(`${path}?${params}`);
  if (res.status === 404) return { total: 0, items: [] }; // an actor with no jobs (yet)
  if (!res.ok) throw new Error(await errorMessage(res));
  const { data } = await res.json();
  return { total: data.total, items: data.items.map((/** @type {any} */ j) => ({ ...j, kind })) };
}

async function loadPage() {
  const gen = viewGen;
  const kinds = /** @type {('build' | 'run')[]} */ (view.kind ? [view.kind] : ['build', 'run']);
  // One kind pages on the server; both are merged here from the newest (up to 1,000 of each).
  const merged = kinds.length > 1;
  const offset = merged ? 0 : view.page * PAGE;
  const limit = merged ? Math.min((view.page + 1) * PAGE, MAX_LIST) : PAGE;
  const lists = await Promise.all(kinds.map((k) => fetchList(k, offset, limit)));
  if (gen !== viewGen) return;
  let items = lists.flatMap((l) => l.items);
  if (merged) items = items.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)).slice(view.page * PAGE, (view.page + 1) * PAGE);
  const total = lists.reduce((n, l) => n + l.total, 0);
  renderRows(items);
  const pages = Math.max(1, Math.ceil(Math.min(total, merged ? MAX_LIST : Infinity) / PAGE));
  ui.page.textContent = `Page ${view.page + 1} of ${pages} · ${total} job${total === 1 ? '' : 's'}`;
  ui.newer.disabled = view.page === 0;
  ui.older.disabled = view.page + 1 >= pages;
  ui.empty.hidden = items.length > 0;
  loaded++;
  document.body.dataset.state = 'ready';
  ui.live.textContent = `Live · updated ${new Date().toLocaleTimeString()}`;
}


/** @param {string} tag @param {string} text @param {string} [className] */
function cell(tag, text, className) {
  const e = document.createElement(tag);
  e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** @param {string} status */
function badge(status) {
  const b = cell('span', status, 'badge');
  b.dataset.status = status;
  return b;
}

/** @param {any[]} items */
function renderRows(items) {
  const now = Date.now();
  const rows = items.map((job) => {
    const tr = document.createElement('tr');
    tr.dataset.id = job.id;
    tr.dataset.status = job.status;
    const statusCell = document.createElement('td');
    statusCell.append(badge(job.status));
    const idCell = document.createElement('td');
    const a = cell('a', job.id, 'id');
    /** @type {HTMLAnchorElement} */ (a).href = logLink(job.id);
    idCell.append(a);
    const end = job.finishedAt ? Date.parse(job.finishedAt) : TERMINAL.has(job.status) ? Date.parse(job.startedAt) : now;
    tr.append(
      cell('td', job.kind === 'build' ? 'Build' : 'Run', 'kind'),
      statusCell,
      cell('td', job.actId ?? '', 'actor'),
      cell('td', job.buildNumber ?? '–', 'number'),
      cell('td', formatTime(job.startedAt), 'time'),
      cell('td', formatDuration(end - Date.parse(job.startedAt)), 'duration'),
      idCell,
    );
    tr.addEventListener('click', (event) => {
      if (!(/** @type {HTMLElement} */ (event.target).closest('a'))) location.href = logLink(job.id);
    });
    return tr;
  });
  ui.rows.replaceChildren(...rows);
}

let pollTimer = /** @type {ReturnType<typeof setTimeout> | undefined} */ (undefined);

/** Reloads the page now and then every POLL_MS while the tab is visible. */
async function poll() {
  clearTimeout(pollTimer);
  if (document.hidden || prompt.shown) return;
  try {
    await loadPage();
  } catch (err) {
    if (err instanceof NeedToken) return;
    ui.live.textContent = `Offline (${/** @type {Error} */ (err).message}); retrying`;
  }
  pollTimer = setTimeout(poll, POLL_MS);
}
document.addEventListener('visibilitychange', () => void poll());

function changeView() {
  viewGen++;
  view.kind = ui.kind.value;
  view.actor = ui.actor.value.trim();
  view.status = ui.status.value;
  void poll();
}
ui.kind.addEventListener('change', () => ((view.page = 0), changeView()));
ui.status.addEventListener('change', () => ((view.page = 0), changeView()));
ui.actor.addEventListener('change', () => ((view.page = 0), changeView()));
ui.newer.addEventListener('click', () => ((view.page = Math.max(0, view.page - 1)), changeView()));
ui.older.addEventListener('click', () => (view.page++, changeView()));

// ---------------------------------------------------------------------------------------------------
// Search across logs: GET /v2/logs/search; each matching line links to its line in the viewer.

let searchText = '';
let searchOffset = 0;

async function runSearch() {
  const params = new URLSearchParams({ q: searchText, offset: String(searchOffset), limit: '20', lines: '5' });
  const res = await api(`/logs/search?${params}`);
  const body = await res.json();
  if (!res.ok) {
    ui.resultsTitle.textContent = String(body?.error?.message ?? res.statusText);
    return;
  }
  const { total, items } = body.data;
  ui.resultsTitle.textContent = `${total} job${total === 1 ? '' : 's'} with “${searchText}” in their log`;
  for (const job of items) {
    const li = document.createElement('li');
    li.className = 'hit';
    const head = document.createElement('div');
    head.className = 'hit-head';
    const a = /** @type {HTMLAnchorElement} */ (cell('a', job.id, 'id'));
    a.href = logLink(job.id);
    head.append(badge(job.status), cell('span', `${job.kind === 'build' ? 'Build' : 'Run'} of ${job.actId}`, 'actor'), a, cell('span', formatTime(job.startedAt), 'time'));
    const lines = document.createElement('ul');
    lines.className = 'hit-lines';
    for (const m of job.matches) {
      const line = document.createElement('li');
      const link = /** @type {HTMLAnchorElement} */ (cell('a', `L${m.line}`, 'ln'));
      link.href = logLink(job.id, m.line);
      link.title = `byte ${m.offset}`;
      line.append(link, cell('code', m.text));
      lines.append(line);
    }
    if (job.moreMatches) lines.append(cell('li', '… more matching lines in this log', 'more'));
    li.append(head, lines);
    ui.hits.append(li);
  }
  searchOffset += items.length;
  ui.moreHits.hidden = searchOffset >= total;
}

ui.searchForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.search.value.trim();
  if ([...text].length < 3) return;
  searchText = text;
  searchOffset = 0;
  ui.hits.replaceChildren();
  ui.results.hidden = false;
  ui.resultsTitle.textContent = 'Searching…';
  runSearch().catch((err) => {
    if (!(err instanceof NeedToken)) ui.resultsTitle.textContent = `Search failed: ${err.message}`;
  });
});
ui.moreHits.addEventListener('click', () => void runSearch().catch(() => undefined));
ui.closeResults.addEventListener('click', () => {
  ui.results.hidden = true;
  ui.search.value = '';
});

// ---------------------------------------------------------------------------------------------------
// Token.

/** @param {string} serverMessage */
function askForToken(serverMessage) {
  clearTimeout(pollTimer);
  ui.jobs.hidden = true;
  prompt.show(
    getToken()
      ? `The token was not accepted (${serverMessage}). Enter your API token.`
      : 'The dashboard lists your own builds and runs: enter your API token.',
  );
}

async function start() {
  prompt.hide();
  ui.jobs.hidden = false;
  if (!getToken()) return askForToken('');
  try {
    const res = await api('/users/me');
    ui.user.textContent = (await res.json()).data.username;
  } catch (err) {
    if (err instanceof NeedToken) return;
  }
  changeView();
}

/** For tests: how many list answers the page has shown. */
Object.defineProperty(window, 'buildlogDashboard', { value: { get loaded() { return loaded; } } });

takeTokenFromAddress();
const prompt = new TokenPrompt({
  entered: start,
  forgotten: () => {
    ui.rows.replaceChildren();
    askForToken('');
  },
});
void start();
