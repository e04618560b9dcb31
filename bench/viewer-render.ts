/**
 * The log viewer's speed in Debian's Chromium, against the budgets of issue 6:
 *  - first screen of a finished 5,000,000-character log (navigation start → the newest lines painted,
 *    the browser's own performance timing), budget 1 s of page time;
 *  - scrolling that log: frame intervals while it is scrolled a screen per frame;
 *  - follow mode: a running job appended at 1,000 and 10,000 lines/s, how far the page trails.
 *
 *   npx tsx bench/viewer-render.ts [--runs 5] [--first-screen-only]
 */
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/browser.js';
import { append, createJob, finish, startTestServer, type TestServer } from '../test/helpers/server.js';

/** Appends `bytes` in 1 MiB pieces, as a producer would, failing loudly on any refusal. */
async function appendAll(server: TestServer, id: string, bytes: Buffer) {
  for (let o = 0; o < bytes.length; o += 1 << 20) {
    const res = await append(server, id, bytes.subarray(o, o + (1 << 20)));
    if (!res.ok) throw new Error(`append: ${res.status} ${await res.text()}`);
  }
}

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const FIRST_SCREEN_ONLY = process.argv.includes('--first-screen-only');

interface Hooks {
  metrics: { firstScreenMs: number | null };
  lineCount: number;
  following: boolean;
  renderedRows: number;
}
const hooks = (page: Page) => page.evaluate(() => (window as unknown as { buildlogViewer: Hooks }).buildlogViewer);

const stamp = (i: number) => `2024-05-01T12:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z `;

/** A CI-like log of exactly `chars` characters: timestamps, some colour, lines of varied length. */
function bigLog(chars: number): string {
  const parts: string[] = [];
  let size = 0;
  for (let i = 0; size < chars; i++) {
    const kind = i % 10 === 0 ? '\x1b[32mPASS\x1b[0m' : i % 97 === 0 ? '\x1b[33mWARN\x1b[0m' : 'INFO';
    const line = `${stamp(i)}[${String(i).padStart(6, '0')}] ${kind} compiling src/module-${i % 977}/file-${i}.ts${' ·'.repeat(i % 23)} (${i % 431} ms)\n`;
    parts.push(line);
    size += line.length;
  }
  return parts.join('').slice(0, chars);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

async function firstScreen(server: TestServer, page: Page, id: string) {
  await page.goto(`${server.url}/logs/${id}`);
  await page.waitForFunction(() => (window as unknown as { buildlogViewer?: Hooks }).buildlogViewer?.metrics.firstScreenMs != null, null, {
    timeout: 60_000,
  });
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
    return {
      firstScreen: performance.getEntriesByName('buildlog:first-screen')[0]!.startTime,
      job: performance.getEntriesByName('buildlog:job')[0]!.startTime,
      logResponse: performance.getEntriesByName('buildlog:log-response')[0]!.startTime,
      logEnd: performance.getEntriesByName('buildlog:log-end')[0]!.startTime,
      responseEnd: nav.responseEnd,
      domContentLoaded: nav.domContentLoadedEventEnd,
    };
  });
}

/** Scrolls a screen per animation frame and measures the frame intervals (a string: the page's code, as written). */
async function scrollFrames(page: Page): Promise<{ frames: number; p50: number; p95: number; max: number }> {
  return page.evaluate(`new Promise((resolve) => {
    const log = document.getElementById('log');
    log.scrollTop = 0;
    const gaps = [];
    let last = performance.now();
    let n = 0;
    const step = () => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
      log.scrollTop += log.clientHeight * 0.9;
      if (++n < 400) requestAnimationFrame(step);
      else {
        gaps.shift();
        gaps.sort((a, b) => a - b);
        resolve({ frames: gaps.length, p50: gaps[Math.floor(gaps.length / 2)], p95: gaps[Math.floor(gaps.length * 0.95)], max: gaps[gaps.length - 1] });
      }
    };
    requestAnimationFrame(step);
  })`);
}

async function follow(server: TestServer, page: Page, rate: number, seconds: number) {
  const id = await createJob(server);
  await page.goto(`${server.url}/logs/${id}`);
  await page.locator('#follow-state[data-mode="live"]').waitFor({ timeout: 15_000 });
  const perBatch = Math.max(1, Math.round(rate / 20)); // 20 appends a second
  const total = rate * seconds;
  let maxTrail = 0;
  const started = performance.now();
  for (let n = 0; n < total; n += perBatch) {
    let batch = '';
    for (let i = n; i < n + perBatch; i++) batch += `${stamp(i)}\x1b[36m[follow]\x1b[0m line ${i + 1} of ${total}: some build output text\n`;
    await append(server, id, batch);
    const shown = (await hooks(page)).lineCount;
    maxTrail = Math.max(maxTrail, n + perBatch - shown);
    const due = started + ((n + perBatch) / rate) * 1000;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const sentAt = performance.now();
  const achieved = total / ((sentAt - started) / 1000);
  await page.locator(`#content .row:has(a.ln[data-n="${total}"])`).waitFor({ timeout: 30_000 });
  const catchUp = performance.now() - sentAt;
  const { following } = await hooks(page);
  await finish(server, id);
  return { total, achieved, catchUp, maxTrail, following };
}

async function main() {
  const server = await startTestServer({ logLevel: 'silent' });
  const browser = await launchChromium({ width: 1280, height: 800 });
  try {
    const chromiumVersion = browser.context.browser()?.version() ?? '?';
    console.log(`viewer bench: Chromium ${chromiumVersion}, 1280×800, server on loopback\n`);

    const text = bigLog(5_000_000);
    const id = await createJob(server);
    // Appended in pieces, as a producer does.
    const bytes = Buffer.from(text);
    await appendAll(server, id, bytes);
    await finish(server, id);
    const lines = text.split('\n').length - 1;

    const results: Awaited<ReturnType<typeof firstScreen>>[] = [];
    let page = await browser.context.newPage();
    for (let r = 0; r < RUNS; r++) {
      await page.close();
      page = await browser.context.newPage();
      results.push(await firstScreen(server, page, id));
    }
    const fs = results.map((r) => r.firstScreen);
    const budget = 1000;
    console.log(`first screen, ${text.length.toLocaleString('en')}-character log (${lines.toLocaleString('en')} lines), ${RUNS} loads:`);
    console.log(`  median ${ms(median(fs))}, min ${ms(Math.min(...fs))}, max ${ms(Math.max(...fs))}  (budget ${budget} ms: median ${(median(fs) / budget).toFixed(2)}× of it)`);
    const at = (k: keyof (typeof results)[number]) => ms(median(results.map((r) => r[k])));
    console.log(`  medians: page HTML in ${at('responseEnd')}, scripts ready ${at('domContentLoaded')}, job object ${at('job')}, log response ${at('logResponse')}, last log byte ${at('logEnd')}, first screen ${at('firstScreen')}`);
    console.log(`  rows in the DOM: ${(await hooks(page)).renderedRows}`);
    if (FIRST_SCREEN_ONLY) return;

    const frames = await scrollFrames(page);
    console.log(`scrolling it a screen per frame, ${frames.frames} frames: interval p50 ${frames.p50.toFixed(1)} ms, p95 ${frames.p95.toFixed(1)} ms, max ${frames.max.toFixed(1)} ms`);
    await page.close();

    for (const [rate, seconds] of [
      [1000, 5],
      [10_000, 3],
    ] as const) {
      page = await browser.context.newPage();
      const f = await follow(server, page, rate, seconds);
      console.log(
        `follow at ${rate.toLocaleString('en')} lines/s for ${seconds} s (${f.total.toLocaleString('en')} lines; producer achieved ${f.achieved.toFixed(0)} lines/s): ` +
          `last line shown ${ms(f.catchUp)} after its append, page behind by at most ${f.maxTrail.toLocaleString('en')} lines when sampled as each append returned, still following: ${f.following}`,
      );
      await page.close();
    }
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
