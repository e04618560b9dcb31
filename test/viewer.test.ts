import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { pagesOfTestServer } from './helpers/browser.js';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';
import './helpers/viewer-hooks.js';

/** Fails the test when the server refused an append or a status change (a 429 would otherwise go unseen). */
async function ok(response: Promise<Response>) {
  const res = await response;
  assert.ok(res.ok, `${res.status} ${await res.text()}`);
}

/** Appends `bytes` in 1 MiB pieces (well within the per-job rate limit), failing loudly on any refusal. */
async function appendAll(server: TestServer, id: string, bytes: Buffer) {
  for (let o = 0; o < bytes.length; o += 1 << 20) {
    await ok(append(server, id, bytes.subarray(o, o + (1 << 20))));
  }
}

const T = { timeout: 60_000 };
const WAIT = { timeout: 15_000 };

const ts = (i: number) => `2024-05-01T12:00:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z `;

/** The rendered row of 1-based line `n`, once it is on screen. */
function row(page: Page, n: number) {
  return page.locator(`#content .row:has(a.ln[data-n="${n}"])`);
}

/** Waits until the page shows a row containing `text`. */
async function seeText(page: Page, text: string) {
  await page.locator('#content .row', { hasText: text }).first().waitFor(WAIT);
}

describe('viewer page (Chromium)', () => {
  const pages = pagesOfTestServer();
  let server: TestServer;
  before(() => {
    server = pages.server;
  });

  test('Chromium is installed', () => {
    pages.browser();
  });

  test('the server serves the page for any id, its assets and the ANSI library, nothing else', T, async () => {
    const page = await fetch(`${server.url}/logs/AAAAAAAAAAAAAAAAA`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    assert.match(await page.text(), /<script type="module" src="\/viewer\/viewer.js">/);
    const assets = [
      ...['viewer.js', 'log-model.js', 'render.js', 'format.js', 'sections.js', 'section-markers.js', 'timestamps.js', 'vendor/ansi_up.js'],
      ...['ansi-filter.js', 'marker-filter.js', 'stripped-text.js', 'job-watch.js', 'log-follow.js', 'requests.js', 'scroller.js', 'log-rows.js'],
      ...['line-links.js', 'search-box.js', 'token.js', 'token-prompt.js', 'api.js', 'page.js'],
    ];
    for (const asset of assets.map((a) => `/viewer/${a}`)) {
      const res = await fetch(`${server.url}${asset}`);
      assert.equal(res.status, 200, asset);
      assert.match(res.headers.get('content-type') ?? '', /javascript/, asset);
    }
    assert.match(await (await fetch(`${server.url}/viewer/vendor/ansi_up.js`)).text(), /export class AnsiUp/);
    assert.match((await fetch(`${server.url}/viewer/viewer.css`)).headers.get('content-type') ?? '', /^text\/css/);
    for (const path of [
      '/viewer/../package.json',
      '/viewer/%2e%2e/package.json',
      '/viewer/nope.js',
      '/viewer/vendor/other.js',
      '/viewer/index.html',
      '/viewer/log-model.d.ts',
      '/viewer/sections.d.ts',
      '/viewer/ansi-filter.d.ts',
      '/viewer/',
    ]) {
      const res = await fetch(`${server.url}${path}`);
      assert.equal(res.status, 404, path);
      assert.equal(((await res.json()) as { error: { type: string } }).error.type, 'page-not-found');
    }
    const post = await fetch(`${server.url}/logs/AAAAAAAAAAAAAAAAA`, { method: 'POST' });
    assert.equal(post.status, 405);
  });

  test('a finished log: colours, escaping, line numbers, timestamps, header, end marker, opens at the end', T, async () => {
    const id = await createJob(server, 'build', { actId: 'my-actor', buildNumber: '1.2.3' });
    let text = '';
    for (let i = 1; i <= 300; i++) text += `${ts(i)}step ${i}\n`;
    text += `${ts(301)}\x1b[31mred text\x1b[0m and \x1b[1;38;2;10;200;30mtrue colour bold\x1b[0m\n`;
    text += `${ts(302)}\x1b[32mgreen that goes on\n${ts(303)}to the next line\x1b[0m back to plain\n`;
    await ok(append(server, id, text));
    await ok(finish(server, id, 'SUCCEEDED'));

    const page = await pages.open(`${server.url}/logs/${id}`);
    await page.locator('#badge[data-status="SUCCEEDED"]').waitFor(WAIT);
    assert.equal(await page.locator('#kind').textContent(), 'Build');
    assert.equal(await page.locator('#job-id').textContent(), id);
    assert.equal(await page.locator('#act').textContent(), 'my-actor #1.2.3');
    assert.notEqual(await page.locator('#started').textContent(), '–');
    assert.notEqual(await page.locator('#finished').textContent(), '–');
    assert.equal(await page.locator('#raw-link').getAttribute('href'), `/v2/logs/${id}?raw=1`);
    assert.equal(await page.locator('#download-link').getAttribute('href'), `/v2/logs/${id}?download=1`);
    await page.locator('.end-marker', { hasText: 'Build finished: SUCCEEDED' }).waitFor(WAIT);
    // Nothing is loaded from anywhere but this server (scripts, styles, fonts, API calls).
    const loaded = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
    assert.ok(loaded.some((u) => u.includes('/v2/')) && loaded.some((u) => u.endsWith('.js')), `resources seen: ${loaded.join(' ')}`);
    assert.deepEqual(loaded.filter((u) => !u.startsWith(`${server.url}/`) && !/^(data|blob):/.test(u)), [], 'nothing loaded from the internet');

    // Opens at the end: the last line is on screen, line 1 is not rendered at all.
    await row(page, 303).waitFor(WAIT);
    assert.equal(await row(page, 1).count(), 0);
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), true);

    const red = row(page, 301).locator('span.ansi-red-fg');
    assert.equal(await red.textContent(), 'red text');
    assert.equal(await red.evaluate((e) => getComputedStyle(e).color), 'rgb(255, 123, 114)');
    const rgb = row(page, 301).locator('.tx > span', { hasText: 'true colour bold' });
    assert.equal(await rgb.evaluate((e) => getComputedStyle(e).color), 'rgb(10, 200, 30)');
    assert.equal(await rgb.evaluate((e) => getComputedStyle(e).fontWeight), '700');
    // The colour set on line 302 is still on at the start of line 303, and reset after.
    assert.equal(await row(page, 303).locator('span.ansi-green-fg').textContent(), 'to the next line');
    assert.equal(await row(page, 303).locator('.tx').textContent(), `${ts(303)}to the next line back to plain`);

    // Timestamps: dimmed, hidden by the toggle.
    const stamp = row(page, 300).locator('.ts');
    assert.equal(await stamp.textContent(), ts(300));
    assert.equal(await stamp.evaluate((e) => getComputedStyle(e).color), 'rgb(110, 118, 129)');
    await page.locator('#ts-mode').selectOption('off');
    assert.equal(await stamp.isVisible(), false);
    await page.locator('#ts-mode').selectOption('utc');
    assert.equal(await stamp.isVisible(), true);

    // Jump to the top and back.
    await page.locator('#jump-top').click();
    await row(page, 1).waitFor(WAIT);
    assert.equal(await row(page, 1).locator('.tx').textContent(), `${ts(1)}step 1`);
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), false);
    await page.locator('#jump-end-float').waitFor(WAIT);
    await page.locator('#jump-end-float').click();
    await row(page, 303).waitFor(WAIT);
    assert.ok(await page.evaluate(() => window.buildlogViewer.renderedRows) < 150, 'only the lines in view are rendered');
    await page.close();
  });

  test('a running job: lines appear live, autoscroll pauses and resumes, the badge turns SUCCEEDED', T, async () => {
    const id = await createJob(server, 'run');
    const page = await pages.open(`${server.url}/logs/${id}`);
    await page.locator('#badge[data-status="RUNNING"]').waitFor(WAIT);
    assert.equal(await page.locator('#kind').textContent(), 'Run');
    await page.locator('#follow-state[data-mode="live"]').waitFor(WAIT);

    await ok(append(server, id, `${ts(0)}first live line\n`));
    await seeText(page, 'first live line');
    // An escape sequence and a UTF-8 character cut between two appends (so between two chunks).
    const tail = Buffer.from(`${ts(1)}\x1b[33mwarn: naïve ✓\x1b[0m done\n`);
    const cutEscape = tail.indexOf('\x1b[33m') + 3;
    const cutChar = tail.indexOf(Buffer.from('✓')) + 1;
    await ok(append(server, id, tail.subarray(0, cutEscape)));
    await ok(append(server, id, tail.subarray(cutEscape, cutChar)));
    await ok(append(server, id, tail.subarray(cutChar)));
    await seeText(page, 'warn: naïve ✓ done');
    assert.equal(await page.locator('#content span.ansi-yellow-fg').textContent(), 'warn: naïve ✓');

    // Many lines: the view follows the end.
    let many = '';
    for (let i = 2; i < 200; i++) many += `${ts(i)}building part ${i}\n`;
    await ok(append(server, id, many));
    await row(page, 200).waitFor(WAIT);
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), true);

    // Scrolling up pauses autoscroll; new lines then do not move the view; "jump to end" follows again.
    await page.locator('#log').hover();
    await page.mouse.wheel(0, -2000);
    await page.waitForFunction(() => !window.buildlogViewer.following, null, WAIT);
    await page.locator('#follow-state[data-mode="paused"]').waitFor(WAIT);
    const before = await page.locator('#log').evaluate((e) => e.scrollTop);
    await ok(append(server, id, `${ts(3)}arrived while paused\n`));
    await page.waitForFunction(() => window.buildlogViewer.lineCount === 201, null, WAIT);
    await page.locator('#jump-end-float', { hasText: '1 new line' }).waitFor(WAIT);
    assert.equal(await page.locator('#log').evaluate((e) => e.scrollTop), before);
    await page.locator('#jump-end-float').click();
    await seeText(page, 'arrived while paused');
    await page.waitForFunction(() => window.buildlogViewer.following, null, WAIT);

    await ok(append(server, id, `${ts(4)}last line\n`));
    await seeText(page, 'last line');
    await ok(finish(server, id, 'SUCCEEDED', 'run'));
    await page.locator('#badge[data-status="SUCCEEDED"]').waitFor(WAIT);
    await page.locator('.end-marker', { hasText: 'Run finished: SUCCEEDED' }).waitFor(WAIT);
    await page.locator('#follow-state[data-mode="done"]').waitFor(WAIT);
    assert.equal(await page.evaluate(() => window.buildlogViewer.metrics.reconnects), 0);
    await page.close();
  });

  test('follow mode keeps up with 1,000 lines/s', T, async () => {
    const id = await createJob(server);
    const page = await pages.open(`${server.url}/logs/${id}`);
    await page.locator('#follow-state[data-mode="live"]').waitFor(WAIT);
    const total = 2000;
    const perBatch = 50; // 20 appends a second
    const started = Date.now();
    for (let n = 0; n < total; n += perBatch) {
      let batch = '';
      for (let i = n; i < n + perBatch; i++) batch += `${ts(i)}\x1b[36mline ${i + 1}\x1b[0m of the fast build\n`;
      await ok(append(server, id, batch));
      const due = started + ((n + perBatch) / 1000) * 1000;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    const sent = Date.now();
    await row(page, total).waitFor(WAIT);
    const lag = Date.now() - sent;
    assert.ok(lag < 3000, `the page showed the last line ${lag} ms after it was appended`);
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), true);
    await ok(finish(server, id));
    await page.close();
  });

  test('search finds, counts and scrolls to matches, next and previous', T, async () => {
    const id = await createJob(server);
    let text = '';
    for (let i = 1; i <= 2000; i++) {
      const special = i === 400 || i === 1200 || i === 1800;
      text += `${ts(i)}line ${i}${special ? ` \x1b[31mNeedle\x1b[0m found at ${i}` : ''}\n`;
    }
    await ok(append(server, id, text));
    await ok(finish(server, id));
    const page = await pages.open(`${server.url}/logs/${id}`);
    await row(page, 2000).waitFor(WAIT);

    await page.locator('#search').fill('needle');
    await page.locator('#search-count', { hasText: '1 of 3' }).waitFor(WAIT);
    await row(page, 400).locator('mark.current').waitFor(WAIT);
    assert.equal(await row(page, 400).locator('mark.current').textContent(), 'Needle');
    assert.equal(await row(page, 400).isVisible(), true);
    const inView = (n: number) =>
      row(page, n).evaluate((e) => {
        const r = e.getBoundingClientRect();
        const v = document.getElementById('log')!.getBoundingClientRect();
        return r.top >= v.top && r.bottom <= v.bottom;
      });
    assert.equal(await inView(400), true);

    await page.locator('#search').press('Enter');
    await page.locator('#search-count', { hasText: '2 of 3' }).waitFor(WAIT);
    await row(page, 1200).locator('mark.current').waitFor(WAIT);
    assert.equal(await inView(1200), true);
    await page.locator('#search-next').click();
    await page.locator('#search-count', { hasText: '3 of 3' }).waitFor(WAIT);
    await page.locator('#search-next').click();
    await page.locator('#search-count', { hasText: '1 of 3' }).waitFor(WAIT);
    await page.locator('#search').press('Shift+Enter');
    await page.locator('#search-count', { hasText: '3 of 3' }).waitFor(WAIT);
    await row(page, 1800).locator('mark.current').waitFor(WAIT);

    await page.locator('#search').fill('no such text');
    await page.locator('#search-count', { hasText: 'no matches' }).waitFor(WAIT);
    await page.close();
  });

  test('HTML in a log is text: <script> and <img onerror> never run', T, async () => {
    const id = await createJob(server);
    const evil = [
      '<script>window.__pwned = "script"</script>',
      '<img src=x onerror="window.__pwned = \'img\'">',
      '\x1b[31m<img src=y onerror=alert(1)>\x1b[0m inside a colour',
      '\x1b]8;;javascript:window.__pwned="link"\x07click me\x1b]8;;\x07',
      '&lt;entity&gt; "quotes" \'single\'',
      'see \x1b]8;;https://example.test/docs?a=1&b=2\x07the docs\x1b]8;;\x07',
    ];
    await ok(append(server, id, evil.map((l) => `${l}\n`).join('')));
    await ok(finish(server, id));
    const page = await pages.newPage();
    const requested: string[] = [];
    page.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await page.goto(`${server.url}/logs/${id}`);
    let dialogs = 0;
    page.on('dialog', (d) => {
      dialogs++;
      void d.dismiss();
    });
    await row(page, 6).waitFor(WAIT);
    assert.equal(await row(page, 1).locator('.tx').textContent(), evil[0]);
    assert.equal(await row(page, 2).locator('.tx').textContent(), evil[1]);
    assert.equal(await row(page, 3).locator('.tx').textContent(), '<img src=y onerror=alert(1)> inside a colour');
    assert.equal(await row(page, 4).locator('.tx').textContent(), 'click me');
    assert.equal(await row(page, 5).locator('.tx').textContent(), evil[4]);
    assert.equal(await page.locator('#content script, #content img, #content [onerror]').count(), 0);
    assert.equal(await row(page, 4).locator('.tx a').count(), 0, 'a javascript: link is not made');
    const link = row(page, 6).locator('.tx a');
    assert.equal(await link.textContent(), 'the docs');
    assert.equal(await link.getAttribute('href'), 'https://example.test/docs?a=1&b=2');
    assert.equal(await link.getAttribute('target'), '_blank');
    // An <img> made from the log's text would have asked for `x` or `y` (even detached); its error handler
    // runs once that request fails. None was asked for by the time the page's network is idle.
    await page.waitForLoadState('networkidle');
    assert.deepEqual(requested.filter((path) => /\/[xy]$/.test(path)), []);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
    assert.equal(dialogs, 0);
    await page.close();
  });

  test('#L links: open at a line, select it, and clicking a line number links to it', T, async () => {
    const id = await createJob(server);
    let text = '';
    for (let i = 1; i <= 1000; i++) text += `line ${i}\n`;
    await ok(append(server, id, text));
    await ok(finish(server, id));
    const page = await pages.open(`${server.url}/logs/${id}#L150`);
    await row(page, 150).waitFor(WAIT);
    await page.waitForFunction(() => window.buildlogViewer.streamDone, null, WAIT);
    assert.equal(await row(page, 150).getAttribute('class'), 'row selected');
    assert.equal(await row(page, 1000).count(), 0, 'opened at the line, not at the end');
    assert.equal(await page.evaluate(() => window.buildlogViewer.following), false);

    await row(page, 155).locator('a.ln').click();
    assert.equal(await page.evaluate(() => location.hash), '#L155');
    await page.locator('#content .row.selected a.ln[data-n="155"]').waitFor(WAIT);
    await row(page, 160).locator('a.ln').click({ modifiers: ['Shift'] });
    assert.equal(await page.evaluate(() => location.hash), '#L155-L160');
    await page.waitForFunction(() => document.querySelectorAll('#content .row.selected').length === 6, null, WAIT);

    await page.evaluate(() => {
      location.hash = '#L900';
    });
    await row(page, 900).waitFor(WAIT);
    await page.locator('#content .row.selected a.ln[data-n="900"]').waitFor(WAIT);
    await page.close();
  });

  test('an unknown id shows "not found"', T, async () => {
    const page = await pages.open(`${server.url}/logs/ZZZZZZZZZZZZZZZZZ`);
    await page.locator('#message', { hasText: 'Log not found' }).waitFor(WAIT);
    assert.equal(await page.evaluate(() => document.body.dataset.state), 'not-found');
    await page.close();
  });

  test('a dropped connection resumes at the next byte with Range, mid-character and mid-line', T, async () => {
    const id = await createJob(server);
    const head = Buffer.from(`${ts(1)}before the drop\n${ts(2)}a split character: ✓ and more\n`);
    await ok(append(server, id, head));
    const cut = head.indexOf(Buffer.from('✓')) + 2; // inside the 3 bytes of ✓

    const ranges: (string | undefined)[] = [];
    const page = await pages.newPage();
    await page.route(
      (url) => url.pathname === `/v2/logs/${id}`,
      async (route) => {
        if (route.request().method() !== 'GET') return route.continue(); // the HEAD asking the stored length
        ranges.push(route.request().headers()['range']);
        if (ranges.length === 1) {
          // The first response stops short: as if the connection closed after `cut` bytes.
          await route.fulfill({
            status: 200,
            headers: { 'content-type': 'text/plain; charset=utf-8', 'x-log-offset': '0' },
            body: head.subarray(0, cut),
          });
        } else if (ranges.length === 2) {
          await route.abort('connectionreset'); // the first retry fails outright
        } else {
          await route.continue();
        }
      },
    );
    await page.goto(`${server.url}/logs/${id}`);
    await seeText(page, 'a split character: ✓ and more');
    await ok(append(server, id, `${ts(3)}after the drop\n`));
    await seeText(page, 'after the drop');
    await ok(finish(server, id));
    await page.locator('.end-marker').waitFor(WAIT);

    assert.equal(ranges[0], undefined, 'the first request may come compressed: no Range');
    assert.equal(ranges[1], `bytes=${cut}-`);
    assert.equal(ranges[2], `bytes=${cut}-`);
    const lines = await page.evaluate(() => Array.from({ length: window.buildlogViewer.lineCount }, (_, i) => window.buildlogViewer.line(i)));
    assert.deepEqual(lines, [`${ts(1)}before the drop`, `${ts(2)}a split character: ✓ and more`, `${ts(3)}after the drop`]);
    assert.ok((await page.evaluate(() => window.buildlogViewer.metrics.reconnects)) >= 2);
    await page.close();
  });

  test('a 5,000,000-character log renders its first screen quickly, only the visible lines', T, async () => {
    const id = await createJob(server);
    const lines: string[] = [];
    let size = 0;
    for (let i = 0; size < 5_000_000; i++) {
      const line = `${ts(i)}[${String(i).padStart(6, '0')}] ${i % 10 === 0 ? '\x1b[32mPASS\x1b[0m' : 'INFO'} compiling src/module-${i % 977}/file-${i}.ts (${i % 431} ms)`;
      lines.push(line);
      size += line.length + 1;
    }
    const text = `${lines.join('\n')}\n`.slice(0, 5_000_000);
    const bytes = Buffer.from(text);
    await appendAll(server, id, bytes);
    await ok(finish(server, id));

    const page = await pages.open(`${server.url}/logs/${id}`);
    await page.waitForFunction(() => window.buildlogViewer.metrics.firstScreenMs !== null, null, { timeout: 30_000 });
    const firstScreen = await page.evaluate(() => performance.getEntriesByName('buildlog:first-screen')[0]!.startTime);
    const count = await page.evaluate(() => window.buildlogViewer.lineCount);
    assert.equal(count, text.split('\n').length - (text.endsWith('\n') ? 1 : 0));
    assert.ok(firstScreen < 5000, `first screen after ${firstScreen} ms`);
    await row(page, count).waitFor(WAIT);
    assert.ok(await page.evaluate(() => window.buildlogViewer.renderedRows) < 150);
    // Still usable: a search over all 5M characters answers.
    await page.locator('#search').fill('file-31337.ts');
    await page.locator('#search-count', { hasText: '1 of 1' }).waitFor(WAIT);
    await row(page, 31338).locator('mark.current').waitFor(WAIT);
    await page.close();
  });

  describe('private mode', () => {
    let privateServer: TestServer;
    before(async () => {
      privateServer = await startTestServer({ privateReads: true });
    });
    after(async () => {
      await privateServer?.stop();
    });

    test('asks for a token, keeps it in the browser only, and sends it as Authorization', T, async () => {
      const id = await createJob(privateServer);
      await ok(append(privateServer, id, 'a private line\n'));
      assert.equal((await api(privateServer)(`/v2/logs/${id}`)).status, 401);

      const page = await pages.open(`${privateServer.url}/logs/${id}`);
      await page.locator('#auth').waitFor(WAIT);
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'auth');
      await page.locator('#token-input').fill('wrong-token');
      await page.locator('#token-submit').click();
      await page.locator('#auth-text', { hasText: 'not accepted' }).waitFor(WAIT);

      const authHeaders: string[] = [];
      page.on('request', (r) => {
        if (r.url().includes('/v2/')) authHeaders.push(r.headers()['authorization'] ?? '');
      });
      await page.locator('#token-input').fill(privateServer.token);
      await page.locator('#token-submit').click();
      await seeText(page, 'a private line');
      assert.equal(await page.locator('#auth').isVisible(), false);
      assert.ok(authHeaders.length > 0 && authHeaders.every((h) => h === `Bearer ${privateServer.token}`));
      assert.equal(await page.evaluate(() => sessionStorage.getItem('buildlog.token')), privateServer.token);
      assert.equal(await page.evaluate(() => localStorage.getItem('buildlog.token')), null);
      assert.ok(!page.url().includes(privateServer.token), 'the token is not in the address');

      // Live with the token too; and a reload in the same tab keeps it.
      await ok(append(privateServer, id, 'a second private line\n'));
      await seeText(page, 'a second private line');
      await page.reload();
      await seeText(page, 'a second private line');
      await page.locator('#forget-token').click();
      await page.locator('#auth').waitFor(WAIT);
      assert.equal(await page.evaluate(() => sessionStorage.getItem('buildlog.token')), null);
      await ok(finish(privateServer, id));
      await page.close();
    });
  });
});
