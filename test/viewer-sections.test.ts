// Sections in the log viewer: the same sections as the server finds, folding, durations, the failed
// section unfolded, section links, timestamp modes and the truncation notice. Node tests of
// web/sections.js, and Debian's Chromium against the real server on loopback.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { LogModel, plainText } from '../web/log-model.js';
import { Sections } from '../web/sections.js';
import { SectionTracker } from '../src/text/sections.js';
import { strippedView } from '../src/text/stripped-view.js';
import { launchChromium, type Browser } from './helpers/browser.js';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';
import { GITHUB_LOG, GITLAB_LOG } from './fixtures/section-logs.js';
import './helpers/viewer-hooks.js';

const E = '\x1b';
const T = { timeout: 60_000 };
const WAIT = { timeout: 15_000 };

/** Marker forms the fixtures leave out: inline, options, unmatched ends, one line ending and starting, Unicode titles. */
const EDGE_LOG = [
  'plain line\n',
  `before section_start:1700000000:inline[collapsed=true,other=1]\r${E}[0K${E}[1mInline header${E}[0m\n`,
  'inside\n',
  `section_start:1700000001:inner\r${E}[0K\n`,
  'inner body\n',
  `section_end:1700000005:inline\r${E}[0K\n`,
  `section_end:1700000006:nothing\r${E}[0K\n`,
  '::endgroup::\n',
  `2026-11-30T10:00:00Z ${E}[36m::group::${E}[1mÜnïcode ✓ title${E}[0m\n`,
  'x\n',
  `section_end:1700000007:a\r${E}[0Ksection_start:1700000007:b\r${E}[0KB header\n`,
  '::endgroup::\n',
  'echo section_start:12:nope without CR and ::group:: inside a line\n',
].join('');

/** The viewer's model fed the bytes as the page decodes them, cut where given. */
function viewerSections(bytes: Buffer, cuts: number[] = []) {
  const model = new LogModel();
  const sections = new Sections();
  const decoder = new TextDecoder();
  let from = 0;
  for (const cut of [...cuts, bytes.length]) {
    model.append(decoder.decode(bytes.subarray(from, cut), { stream: true }));
    sections.update(model);
    from = cut;
  }
  return { model, sections };
}

/** The server's sections of the same bytes, with byte offsets turned into line indexes. */
function serverSections(bytes: Buffer) {
  const tracker = new SectionTracker();
  tracker.push(bytes);
  const lineOf = (offset: number) => bytes.subarray(0, offset).toString('latin1').split('\n').length - 1;
  return tracker.sections().map((s) => ({
    name: s.name,
    title: s.title,
    depth: s.depth,
    collapsed: s.collapsed,
    startedAt: s.startedAt,
    finishedAt: s.finishedAt,
    line: lineOf(s.start),
    endLine: s.end === null ? null : lineOf(s.end - 1),
  }));
}

const comparable = (sections: Sections) =>
  sections.list.map(({ name, title, depth, collapsed, startedAt, finishedAt, line, endLine }) => ({ name, title, depth, collapsed, startedAt, finishedAt, line, endLine }));

describe('viewer sections (web/sections.js)', () => {
  test('finds the sections the server finds, whatever the cut: names, titles, depth, collapsed, times, lines', () => {
    for (const log of [GITLAB_LOG, GITHUB_LOG, EDGE_LOG]) {
      const bytes = Buffer.from(log);
      const expected = serverSections(bytes);
      assert.ok(expected.length >= 3);
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.deepEqual(comparable(viewerSections(bytes, [cut]).sections), expected, `cut at byte ${cut}`);
      }
    }
    const edge = comparable(viewerSections(Buffer.from(EDGE_LOG)).sections);
    assert.deepEqual(
      edge.map(({ name, title, depth, collapsed, endLine }) => ({ name, title, depth, collapsed, endLine })),
      [
        { name: 'inline', title: 'Inline header', depth: 0, collapsed: true, endLine: 5 },
        { name: 'inner', title: 'inner', depth: 1, collapsed: false, endLine: 5 },
        { name: 'Ünïcode ✓ title', title: 'Ünïcode ✓ title', depth: 0, collapsed: false, endLine: 11 },
        { name: 'b', title: 'B header', depth: 1, collapsed: false, endLine: 11 },
      ],
    );
  });

  test('lines show what the stripped view shows: header text, never marker syntax', () => {
    for (const log of [GITLAB_LOG, GITHUB_LOG, EDGE_LOG]) {
      const { model } = viewerSections(Buffer.from(log));
      for (const line of model.lines) {
        const stripped = strippedView(Buffer.from(`${line}\n`)).toString().replace(/\n$/, '');
        assert.equal(plainText(line), stripped, JSON.stringify(line));
      }
    }
  });

  test('folding: rows map to the shown lines and back, for every combination of folds', () => {
    const { model, sections } = viewerSections(Buffer.from(`${EDGE_LOG}${GITLAB_LOG}${GITHUB_LOG}`));
    const n = model.lineCount;
    const list = sections.list;
    assert.ok(list.length >= 9);
    // Lines that only end sections, the unmatched ends too (EDGE_LOG lines 6 and 7).
    assert.deepEqual(sections.endOnly.slice(0, 4), [5, 6, 7, 11]);
    assert.ok(list.filter((s) => s.endLine !== null).every((s) => s.endHidden === sections.endOnly.includes(s.endLine!)));
    for (let mask = 0; mask < 1 << list.length; mask++) {
      list.forEach((s, k) => {
        if (s.folded !== Boolean(mask & (1 << k))) sections.toggle(s);
      });
      // Shown: not an end-only line, not in the body of a folded section.
      const shown: number[] = [];
      for (let line = 0; line < n; line++) {
        const endOnly = sections.endOnly.includes(line);
        const inFolded = list.some((s) => s.folded && line > s.line && (s.endLine === null || line < s.endLine || (line === s.endLine && s.endHidden)));
        if (!endOnly && !inFolded) shown.push(line);
      }
      assert.equal(sections.rowCount(n), shown.length, `mask ${mask}`);
      shown.forEach((line, row) => {
        assert.equal(sections.lineAt(row), line, `mask ${mask} row ${row}`);
        assert.equal(sections.rowOf(line), row, `mask ${mask} line ${line}`);
      });
    }
    // A folded open section hides what arrives after it; revealing a line unfolds what hides it.
    const live = viewerSections(Buffer.from(GITHUB_LOG));
    const build = live.sections.byName('Build')!;
    live.sections.toggle(build);
    const rows = live.sections.rowCount(live.model.lineCount);
    live.model.append('2026-11-30T10:00:08.000Z more\n2026-11-30T10:00:09.000Z output\n');
    live.sections.update(live.model);
    assert.equal(live.sections.rowCount(live.model.lineCount), rows);
    live.sections.reveal(live.model.lineCount - 1);
    assert.equal(build.folded, false);
    assert.equal(live.sections.rowCount(live.model.lineCount), rows + 3);
  });
});

/** A GitLab job killed by its timeout inside a collapsed section with long output. */
function gitlabTimedOut(outputLines: number) {
  let log = [
    `${E}[0KRunning with gitlab-runner 17.5.0 (a1b2c3d4)${E}[0;m\n`,
    `${E}[0Ksection_start:1732982400:prepare_executor\r${E}[0K${E}[0K${E}[36;1mPreparing the "docker" executor${E}[0;m${E}[0;m\n`,
    `Using Docker executor with image node:20 ...\n`,
    `${E}[0Ksection_end:1732982403:prepare_executor\r${E}[0K\n`,
    `${E}[0Ksection_start:1732982403:step_script[collapsed=true]\r${E}[0K${E}[0K${E}[36;1mExecuting "step_script" stage of the job script${E}[0;m${E}[0;m\n`,
    `${E}[32;1m$ npm run e2e${E}[0;m\n`,
  ].join('');
  for (let i = 1; i <= outputLines; i++) log += `  ✓ e2e scenario ${i} (${(i * 37) % 900} ms)\n`;
  return `${log}  … waiting for the browser to start\n`;
}

describe('viewer sections in the page (Chromium)', () => {
  let browser: Browser;
  let server: TestServer;
  const pageErrors: string[] = [];

  before(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });
  afterEach(() => {
    assert.deepEqual(pageErrors.splice(0), [], 'no uncaught errors in the page');
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function open(url: string, setup?: (page: Page) => Promise<void>): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await setup?.(page);
    await page.goto(url);
    return page;
  }

  async function ok(response: Promise<Response>) {
    const res = await response;
    assert.ok(res.ok, `${res.status} ${await res.text()}`);
  }

  const row = (page: Page, n: number) => page.locator(`#content .row:has(a.ln[data-n="${n}"])`);
  const header = (page: Page, name: string) => page.locator(`#content .row.section[data-section="${name}"]`);
  /** Whether the element lies wholly within the log's visible area. */
  const inView = (locator: ReturnType<Page['locator']>) =>
    locator.evaluate((e) => {
      const r = e.getBoundingClientRect();
      const v = document.getElementById('log')!.getBoundingClientRect();
      return r.top >= v.top && r.bottom <= v.bottom;
    });
  /** Whether the element comes into view within WAIT: the viewer scrolls and renders in its next frames. */
  const comesIntoView = async (locator: ReturnType<Page['locator']>) => {
    const deadline = Date.now() + WAIT.timeout;
    while (!(await inView(locator))) {
      if (Date.now() > deadline) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  };
  const shownLines = (page: Page) => page.locator('#content .row a.ln').evaluateAll((links) => links.map((a) => Number((a as HTMLElement).dataset.n)).sort((x, y) => x - y));

  test('GitLab sections fold and unfold, show their durations; collapsed ones start folded; nested ones too', T, async () => {
    const id = await createJob(server);
    await ok(append(server, id, GITLAB_LOG));
    await ok(finish(server, id));
    const page = await open(`${server.url}/logs/${id}`);
    await page.locator('.end-marker').waitFor(WAIT);

    // Lines 4, 9 and 10 only end sections: never shown. step_script (collapsed=true) hides 6-8.
    assert.deepEqual(await shownLines(page), [1, 2, 3, 5, 11]);
    assert.equal(await header(page, 'prepare_executor').locator('.tx').textContent(), 'Preparing the "docker" executor');
    assert.equal(await header(page, 'prepare_executor').locator('.dur').textContent(), '3.0 s');
    assert.equal(await header(page, 'step_script').locator('.dur').textContent(), '8.0 s');
    assert.equal(await header(page, 'step_script').locator('button.fold').getAttribute('aria-expanded'), 'false');
    assert.equal(await header(page, 'prepare_executor').locator('button.fold').getAttribute('aria-expanded'), 'true');
    const text = await page.locator('#content').innerText();
    assert.ok(!text.includes('section_') && !text.includes('\r'), 'no marker syntax shows');

    await header(page, 'step_script').locator('button.fold').click();
    await header(page, 'npm_test').waitFor(WAIT);
    assert.deepEqual(await shownLines(page), [1, 2, 3, 5, 6, 7, 8, 11]);
    assert.equal(await header(page, 'npm_test').locator('.dur').textContent(), '6.0 s');
    // The nested one folds on its own; the header's text folds too.
    await header(page, 'npm_test').locator('button.fold').click();
    await page.waitForFunction(() => !document.querySelector('#content a.ln[data-n="8"]'), null, WAIT);
    assert.deepEqual(await shownLines(page), [1, 2, 3, 5, 6, 7, 11]);
    await header(page, 'prepare_executor').locator('.tx').click();
    await page.waitForFunction(() => !document.querySelector('#content a.ln[data-n="3"]'), null, WAIT);
    assert.deepEqual(await shownLines(page), [1, 2, 5, 6, 7, 11]);
    // Folding the outer one hides the nested one with it; unfolding it shows the nested one still folded.
    await header(page, 'step_script').locator('button.fold').click();
    await page.waitForFunction(() => !document.querySelector('#content a.ln[data-n="7"]'), null, WAIT);
    await header(page, 'step_script').locator('button.fold').click();
    await header(page, 'npm_test').waitFor(WAIT);
    assert.deepEqual(await shownLines(page), [1, 2, 5, 6, 7, 11]);
    await page.close();
  });

  test('live: an open section says it is running, gets its duration when it closes; the section open when the job fails is unfolded and scrolled to', T, async () => {
    const id = await createJob(server);
    // Earlier output, more than a screen.
    let earlier = '2026-11-30T09:59:00.000Z ::group::Checkout\n';
    for (let i = 0; i < 300; i++) earlier += `2026-11-30T09:59:01.000Z remote: Counting objects: ${i}% (${i}/300)\n`;
    earlier += '2026-11-30T09:59:02.500Z ::endgroup::\n';
    await ok(append(server, id, earlier));
    const page = await open(`${server.url}/logs/${id}`);
    await row(page, 301).waitFor(WAIT);

    const lines = GITHUB_LOG.split(/(?<=\n)/);
    await ok(append(server, id, lines.slice(0, 3).join(''))); // Install dependencies, then the nested group opens
    await header(page, 'Post-install scripts').locator('.dur.running', { hasText: 'running' }).waitFor(WAIT);
    assert.equal(await header(page, 'Install dependencies').locator('.dur').textContent(), 'running');
    await ok(append(server, id, lines.slice(3, 5).join(''))); // the nested group ends
    await header(page, 'Post-install scripts').locator('.dur', { hasText: '0.8 s' }).waitFor(WAIT);
    await ok(append(server, id, lines.slice(5).join(''))); // the outer one ends, Build opens and fails
    await header(page, 'Install dependencies').locator('.dur', { hasText: '6.0 s' }).waitFor(WAIT);
    await header(page, 'Build').locator('.dur.running').waitFor(WAIT);
    // The reader folds Build while it runs; the failure unfolds it again.
    await header(page, 'Build').locator('button.fold').click();
    await page.locator('#content .row.section.folded[data-section="Build"]').waitFor(WAIT);
    await page.keyboard.press('End');
    await page.waitForFunction(() => window.buildlogViewer.following, null, WAIT);

    await ok(finish(server, id, 'FAILED'));
    await page.locator('.end-marker', { hasText: 'FAILED' }).waitFor(WAIT);
    const build = page.locator('#content .row.section.failed[data-section="Build"]');
    await build.waitFor(WAIT);
    assert.equal(await build.locator('button.fold').getAttribute('aria-expanded'), 'true');
    assert.equal(await build.locator('.dur').textContent(), 'not closed');
    assert.equal(await inView(build), true, 'the failed section is in view');
    const error = page.locator('#content .row', { hasText: 'error TS2304' });
    assert.equal(await inView(error), true, 'with its last lines');
    await page.close();
  });

  test('a failed section longer than the screen: unfolded, its end (the failure) in view', T, async () => {
    const id = await createJob(server);
    await ok(append(server, id, gitlabTimedOut(400)));
    await ok(finish(server, id, 'TIMED-OUT'));
    const page = await open(`${server.url}/logs/${id}`);
    await page.locator('.end-marker', { hasText: 'TIMED-OUT' }).waitFor(WAIT);
    const last = page.locator('#content .row', { hasText: 'waiting for the browser to start' });
    await last.waitFor(WAIT);
    assert.equal(await inView(last), true);
    const shown = await shownLines(page);
    assert.ok(shown.includes(400), 'the collapsed step_script is unfolded');
    await page.locator('#jump-top').click();
    const step = page.locator('#content .row.section.failed[data-section="step_script"]');
    await step.waitFor(WAIT);
    assert.equal(await step.locator('button.fold').getAttribute('aria-expanded'), 'true');
    assert.equal(await header(page, 'prepare_executor').locator('button.fold').getAttribute('aria-expanded'), 'true');
    await page.close();
  });

  test('section links: #section=<name> unfolds and scrolls to it; each header offers its link', T, async () => {
    const id = await createJob(server);
    let tail = '';
    for (let i = 0; i < 500; i++) tail += `cleanup step ${i}\n`;
    await ok(append(server, id, GITLAB_LOG + tail));
    await ok(finish(server, id));

    const page = await open(`${server.url}/logs/${id}#section=npm_test`);
    const npmTest = header(page, 'npm_test');
    await npmTest.waitFor(WAIT); // inside the collapsed step_script: both unfolded
    await page.waitForFunction(() => window.buildlogViewer.streamDone, null, WAIT);
    assert.equal(await inView(npmTest), true);
    assert.equal(await header(page, 'step_script').locator('button.fold').getAttribute('aria-expanded'), 'true');
    assert.equal(await row(page, 511).count(), 0, 'opened at the section, not at the end');
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), false);

    // Each header's link; following one scrolls there.
    const link = header(page, 'prepare_executor').locator('a.sec-link');
    assert.equal(await link.getAttribute('href'), '#section=prepare_executor');
    await page.locator('#jump-end').click();
    await row(page, 511).waitFor(WAIT);
    await page.evaluate(() => {
      location.hash = '#section=step_script';
    });
    await header(page, 'step_script').waitFor(WAIT);
    assert.equal(await comesIntoView(header(page, 'step_script')), true);
    await header(page, 'prepare_executor').hover();
    await header(page, 'prepare_executor').locator('a.sec-link').click();
    assert.equal(await page.evaluate(() => location.hash), '#section=prepare_executor');
    assert.equal(await comesIntoView(header(page, 'prepare_executor')), true);

    // A GitHub group's title, spaces and all.
    const gh = await createJob(server);
    await ok(append(server, gh, `${GITHUB_LOG}${tail}`));
    await ok(finish(server, gh));
    const ghPage = await open(`${server.url}/logs/${gh}#section=Post-install%20scripts`);
    const post = header(ghPage, 'Post-install scripts');
    await post.waitFor(WAIT);
    await ghPage.waitForFunction(() => window.buildlogViewer.streamDone, null, WAIT);
    assert.equal(await inView(post), true);
    assert.equal(await post.locator('a.sec-link').getAttribute('href'), '#section=Post-install%20scripts');
    await page.close();
    await ghPage.close();
  });

  test('timestamps as UTC, local time or time since the job started; the choice is remembered', T, async () => {
    const id = await createJob(server);
    const job = (await (await api(server)(`/v2/actor-builds/${id}`)).json()) as { data: { startedAt: string } };
    const start = Date.parse(job.data.startedAt);
    const at = (ms: number) => new Date(start + ms).toISOString();
    await ok(append(server, id, `${at(1234)} compiling\n${at(65_000)} linking\n${at(3_723_456)} done\n`));
    await ok(finish(server, id));
    // Asia/Kolkata: UTC+05:30 all year, so the expected local time does not depend on the date.
    const kolkata = async (page: Page) => {
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Emulation.setTimezoneOverride', { timezoneId: 'Asia/Kolkata' });
    };
    const local = (ms: number) => new Date(start + ms + 5.5 * 3600_000).toISOString().replace('T', ' ').replace('Z', ' ');
    const stamps = (page: Page) => page.locator('#content .row .ts').allTextContents();

    const page = await open(`${server.url}/logs/${id}`, kolkata);
    await row(page, 3).waitFor(WAIT);
    assert.deepEqual(await stamps(page), [`${at(1234)} `, `${at(65_000)} `, `${at(3_723_456)} `]);
    await page.locator('#ts-mode').selectOption('elapsed');
    await page.waitForFunction(() => document.querySelector('#content .ts')?.textContent?.startsWith('+'), null, WAIT);
    assert.deepEqual(await stamps(page), ['+00:00:01.234 ', '+00:01:05.000 ', '+01:02:03.456 ']);
    await page.locator('#ts-mode').selectOption('local');
    await page.waitForFunction(() => !document.querySelector('#content .ts')?.textContent?.startsWith('+'), null, WAIT);
    assert.deepEqual(await stamps(page), [local(1234), local(65_000), local(3_723_456)]);
    // Search matches the timestamps as shown.
    await page.locator('#search').fill(local(65_000).slice(11, 19));
    await page.locator('#search-count', { hasText: '1 of 1' }).waitFor(WAIT);
    await page.locator('#search').fill(at(65_000).slice(0, 19));
    await page.locator('#search-count', { hasText: 'no matches' }).waitFor(WAIT);
    await page.close();

    // Remembered in this browser.
    const again = await open(`${server.url}/logs/${id}`, kolkata);
    await row(again, 3).waitFor(WAIT);
    assert.equal(await again.locator('#ts-mode').inputValue(), 'local');
    assert.deepEqual(await stamps(again), [local(1234), local(65_000), local(3_723_456)]);
    await again.locator('#ts-mode').selectOption('off');
    assert.equal(await row(again, 1).locator('.ts').isVisible(), false);
    await again.locator('#ts-mode').selectOption('utc');
    assert.equal(await row(again, 1).locator('.ts').isVisible(), true);
    await again.close();
  });

  describe('a log whose head retention dropped', () => {
    let small: TestServer;
    before(async () => {
      small = await startTestServer({ retentionChars: 400 });
    });
    after(async () => {
      await small?.stop();
    });

    test('shows the notice, and the sections of what is kept, as GET …/sections lists them', T, async () => {
      const id = await createJob(small);
      let log = `${E}[0Ksection_start:1700000000:early\r${E}[0KEarly section\n`;
      for (let i = 0; i < 20; i++) log += `early output line ${String(i).padStart(2, '0')} ...........\n`;
      log += `${E}[0Ksection_end:1700000010:early\r${E}[0K\n`;
      log += `${E}[0Ksection_start:1700000010:late[collapsed=true]\r${E}[0KLate section\n`;
      for (let i = 0; i < 3; i++) log += `late output ${i}\n`;
      log += `${E}[0Ksection_end:1700000012:late\r${E}[0K\n${E}[0Ksection_start:1700000012:last\r${E}[0KLast section\nfinal line\n`;
      const bytes = Buffer.from(log);
      assert.ok(bytes.length > 600);
      await ok(append(small, id, bytes));
      await ok(finish(small, id));
      const dropped = bytes.length - 400;

      const page = await open(`${small.url}/logs/${id}`);
      await page.locator('.end-marker').waitFor(WAIT);
      assert.equal(
        await page.locator('#truncated').textContent(),
        `[buildlog] ${dropped.toLocaleString('en')} bytes at the start of this log were dropped: the server keeps only the end of each log.`,
      );
      assert.equal(await page.locator('#truncated').isVisible(), true);

      const listed = ((await (await api(small)(`/v2/logs/${id}/sections`)).json()) as { data: { items: { name: string; start: number; end: number | null }[] } }).data.items;
      const kept = bytes.subarray(dropped);
      const lineOf = (offset: number) => kept.subarray(0, offset - dropped).toString('latin1').split('\n').length - 1;
      const inPage = await page.evaluate(() => window.buildlogViewer.sections);
      assert.deepEqual(
        inPage.map(({ name, line, endLine }) => ({ name, line, endLine })),
        listed.map((s) => ({ name: s.name, line: lineOf(s.start), endLine: s.end === null ? null : lineOf(s.end - 1) })),
      );
      assert.deepEqual(
        inPage.map((s) => s.name),
        ['late', 'last'],
        'the early section began before what is kept: its end alone is no section',
      );
      await header(page, 'late').waitFor(WAIT);
      assert.equal(await header(page, 'late').locator('button.fold').getAttribute('aria-expanded'), 'false');
      const texts = await page.locator('#content .row:not(.end-marker) .tx').allTextContents();
      assert.ok(texts[0]!.endsWith('...........'), 'the view starts in the middle of a line');
      assert.deepEqual(texts.slice(-3), ['Late section', 'Last section', 'final line'], 'no row for the early end marker, nor the late one');
      assert.ok(!texts.includes(''));
      await page.close();
    });
  });
});
