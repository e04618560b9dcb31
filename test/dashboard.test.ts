// The dashboard at / in Debian's Chromium: the token from /#token=, the job list, live status, filters,
// and a search that opens the viewer at the matching line.
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page, Request } from 'playwright-core';
import { launchChromium, type Browser } from './helpers/browser.js';
import { append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

const T = { timeout: 60_000 };
const WAIT = { timeout: 15_000 };

describe('dashboard', () => {
  let server: TestServer;
  let browser: Browser;
  const pageErrors: string[] = [];
  const requests: Request[] = [];

  before(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  afterEach(() => {
    assert.deepEqual(pageErrors.splice(0), [], 'no uncaught errors in the page');
    // The token travels in the Authorization header only, never in an address.
    for (const r of requests.splice(0)) assert.ok(!r.url().includes(server.token), `token in ${r.url()}`);
  });

  async function open(path = `/#token=${encodeURIComponent(server.token)}`): Promise<Page> {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('request', (r) => requests.push(r));
    await page.goto(`${server.url}${path}`);
    return page;
  }

  const row = (page: Page, id: string) => page.locator(`#rows tr[data-id="${id}"]`);

  test('lists the jobs newest first, takes the token out of the address, and shows a status change within 2 s', T, async () => {
    const build = await createJob(server, 'build', { actId: 'web-app', buildNumber: '0.3.1' });
    await finish(server, build, 'FAILED');
    const run = await createJob(server, 'run', { actId: 'web-app' });
    const page = await open();
    await row(page, run).waitFor(WAIT);
    assert.equal(new URL(page.url()).hash, '', 'the token left the address bar');
    assert.equal(await page.evaluate(() => localStorage.getItem('buildlog.token')), server.token);
    const ids = await page.locator('#rows tr').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id));
    assert.deepEqual(ids.slice(0, 2), [run, build], 'newest first, builds and runs together');
    assert.match(await row(page, build).innerText(), /Build\s+FAILED\s+web-app\s+0\.3\.1/);
    assert.equal(await row(page, run).locator('a.id').getAttribute('href'), `/logs/${run}`);

    // Live: the PUT's new status shows without a reload.
    await row(page, run).locator('[data-status="RUNNING"]').waitFor(WAIT);
    const put = Date.now();
    const res = await finish(server, run, 'SUCCEEDED', 'run');
    assert.equal(res.status, 200);
    await page.locator(`#rows tr[data-id="${run}"][data-status="SUCCEEDED"]`).waitFor({ timeout: 2_000 });
    const shownAfter = Date.now() - put;
    assert.ok(shownAfter <= 2_000, `shown ${shownAfter} ms after the PUT`);
    // A new job appears on top, also without a reload.
    const later = await createJob(server, 'build', { actId: 'other-app', buildNumber: '1.0.0' });
    await page.locator('#rows tr').first().and(row(page, later)).waitFor(WAIT);
    await page.close();
  });

  test('filters by kind, actor and status', T, async () => {
    const failed = await createJob(server, 'run', { actId: 'filtered' });
    await finish(server, failed, 'FAILED', 'run');
    const ok = await createJob(server, 'run', { actId: 'filtered' });
    await finish(server, ok, 'SUCCEEDED', 'run');
    const page = await open('/');
    await row(page, ok).waitFor(WAIT);
    await page.locator('#actor').fill('admin/filtered');
    await page.locator('#actor').dispatchEvent('change');
    await page.locator('#status').selectOption('FAILED');
    await page.waitForFunction(
      (id) => [...document.querySelectorAll<HTMLElement>('#rows tr')].map((r) => r.dataset.id).join() === id,
      failed,
      WAIT,
    );
    await page.locator('#kind').selectOption('build');
    await page.locator('#empty').waitFor({ state: 'visible', ...WAIT });
    await page.close();
  });

  test('a search finds a line and opens the viewer at it', T, async () => {
    const id = await createJob(server, 'build', { actId: 'searched', buildNumber: '2.0.0' });
    const lines = Array.from({ length: 300 }, (_, i) => `2026-11-30T10:00:00.000Z step ${i}: fine\n`);
    lines[240] = '2026-11-30T10:00:00.000Z fetch failed: \x1b[31mECONNRESET\x1b[0m from registry\n';
    await append(server, id, lines.join(''));
    await finish(server, id, 'FAILED');
    const page = await open('/');
    await page.locator('#search').fill('econnreset');
    await page.locator('#search').press('Enter');
    const link = page.locator('.hit a.ln').first();
    await link.waitFor(WAIT);
    assert.equal(await link.getAttribute('href'), `/logs/${id}#L241`);
    assert.match(await page.locator('.hit').first().innerText(), /fetch failed: ECONNRESET from registry/);
    await link.click();
    await page.waitForURL(`**/logs/${id}#L241`, WAIT);
    const selected = page.locator('#content .row.selected');
    await selected.waitFor(WAIT);
    assert.equal(await selected.locator('a.ln').getAttribute('data-n'), '241');
    assert.match(await selected.innerText(), /ECONNRESET from registry/);
    assert.ok(await selected.isVisible(), 'the viewer scrolled to the line');
    await page.close();
  });

  test('without a token the dashboard asks for one', T, async () => {
    const page = await browser.context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    await page.goto(`${server.url}/`);
    await page.evaluate(() => (localStorage.clear(), sessionStorage.clear()));
    await page.reload();
    await page.locator('#auth').waitFor({ state: 'visible', ...WAIT });
    await page.locator('#token-input').fill(server.token);
    await page.locator('#token-submit').click();
    await page.locator('#rows tr').first().waitFor(WAIT);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('buildlog.token')), server.token);
    await page.close();
  });
});
