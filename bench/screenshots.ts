/**
 * Screenshots of the log viewer for the docs: a running build followed live, and a finished run.
 * Writes docs/viewer-running.png and docs/viewer-finished.png (1280×720) from a local server with
 * made-up but typical actor logs.
 *
 *   npx tsx bench/screenshots.ts
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { launchChromium } from '../test/helpers/browser.js';
import { append, createJob, finish, startTestServer, type TestServer } from '../test/helpers/server.js';

const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs');

const ESC = '\x1b';
const red = (s: string) => `${ESC}[31m${s}${ESC}[39m`;
const green = (s: string) => `${ESC}[32m${s}${ESC}[39m`;
const yellow = (s: string) => `${ESC}[33m${s}${ESC}[39m`;
const cyan = (s: string) => `${ESC}[36m${s}${ESC}[39m`;
const gray = (s: string) => `${ESC}[90m${s}${ESC}[39m`;
const bold = (s: string) => `${ESC}[1m${s}${ESC}[22m`;

/** Lines with timestamps a few hundred milliseconds apart, ending about now (as the job's own times do). */
function stamped(lines: string[], startMs = Date.now() - 40_000): string {
  let t = startMs;
  return lines
    .map((line, i) => {
      t += 40 + ((i * 397) % 900);
      return `${new Date(t).toISOString()} ${line}\n`;
    })
    .join('');
}

const buildLines = [
  `${bold('ACTOR:')} Pulling Docker image of build ${cyan('0.3.12')} from registry.`,
  `${bold('ACTOR:')} Creating Docker container.`,
  `${bold('ACTOR:')} Starting Docker container.`,
  `Step 1/8 : FROM apify/actor-node:20`,
  ` ---> 6f1e3c0f9a2b`,
  `Step 2/8 : COPY package*.json ./`,
  ` ---> Using cache`,
  `Step 3/8 : RUN npm --quiet set progress=false && npm install --omit=dev --omit=optional`,
  ` ---> Running in 2d0c6a8b7e41`,
  `${yellow('npm WARN')} deprecated ${bold('inflight@1.0.6')}: This module is not supported, and leaks memory.`,
  `${yellow('npm WARN')} deprecated ${bold('glob@7.2.3')}: Glob versions prior to v9 are no longer supported`,
  `added 312 packages, and audited 313 packages in 9s`,
  `48 packages are looking for funding`,
  `  run \`npm fund\` for details`,
  `found ${green('0')} vulnerabilities`,
  `Step 4/8 : COPY . ./`,
  ` ---> 0b8a7d2c11f4`,
  `Step 5/8 : RUN npm run build`,
  ``,
  `> my-scraper@0.3.12 build`,
  `> tsc -p tsconfig.json`,
  ``,
  `Step 6/8 : RUN npm test`,
  ``,
  `> my-scraper@0.3.12 test`,
  `> node --test`,
  ``,
  `${green('✔')} parses the input schema ${gray('(2.41 ms)')}`,
  `${green('✔')} builds start URLs from the input ${gray('(0.88 ms)')}`,
  `${green('✔')} extracts product cards ${gray('(14.02 ms)')}`,
  `${green('✔')} follows pagination links ${gray('(6.73 ms)')}`,
  `${green('✔')} normalises prices and currencies ${gray('(1.19 ms)')}`,
  `${green('✔')} retries a 503 with back-off ${gray('(205.7 ms)')}`,
  `${green('✔')} stores results in the dataset ${gray('(3.30 ms)')}`,
  `${cyan('ℹ')} tests 7`,
  `${cyan('ℹ')} pass 7`,
  `${cyan('ℹ')} fail 0`,
  `Step 7/8 : RUN echo "Installed NPM packages:" && (npm list --omit=dev --all || true)`,
  `my-scraper@0.3.12 /home/myuser`,
  `├── apify@3.2.6`,
  `├── crawlee@3.11.5`,
  `└── cheerio@1.0.0`,
  `Step 8/8 : CMD npm start --silent`,
  ` ---> Running in a8e11f02c3d9`,
  `Removing intermediate container a8e11f02c3d9`,
  ` ---> 4c2f9e7b0d18`,
  `Successfully built 4c2f9e7b0d18`,
  `${bold('ACTOR:')} Pushing Docker image of build ${cyan('0.3.12')} to registry.`,
  `${bold('ACTOR:')} Pushed image ${green('successfully')}.`,
  `${bold('ACTOR:')} Build finished.`,
];

function runLines(): string[] {
  const lines = [
    `${bold('ACTOR:')} Pulling Docker image of build ${cyan('0.3.12')} from registry.`,
    `${bold('ACTOR:')} Creating Docker container.`,
    `${bold('ACTOR:')} Starting Docker container.`,
    `${green('INFO')}  System info {"apifyVersion":"3.2.6","crawleeVersion":"3.11.5","osType":"Linux","nodeVersion":"v20.18.0"}`,
    `${green('INFO')}  CheerioCrawler: Starting the crawler.`,
  ];
  for (let i = 1; i <= 60; i++) {
    const url = `https://shop.example.com/catalog/page-${i}`;
    if (i % 17 === 0) {
      lines.push(`${yellow('WARN')}  CheerioCrawler: Reclaiming failed request back to the list or queue. Request blocked - received 429 status code. {"id":"r${i}x","url":"${url}","retryCount":1}`);
    } else {
      lines.push(`${green('INFO')}  CheerioCrawler: Scraped ${url} ${gray(`{"products":${20 + (i % 7)},"ms":${180 + ((i * 37) % 240)}}`)}`);
    }
    if (i % 20 === 0) lines.push(`${green('INFO')}  CheerioCrawler:Statistics: CheerioCrawler request statistics: {"requestsFinished":${i},"requestsFailed":0,"requestsRetries":${Math.floor(i / 17)}}`);
  }
  lines.push(
    `${red('ERROR')} CheerioCrawler: Request failed and reached maximum retries. Error: Selector ".price" not found`,
    `${gray('    at extractProduct (/home/myuser/dist/routes.js:42:19)')}`,
    `${gray('    at Object.handler (/home/myuser/dist/routes.js:18:26)')}`,
    `${gray('    at async wrap (/home/myuser/node_modules/@apify/timeout/cjs/index.cjs:54:21)')} {"id":"r61x","url":"https://shop.example.com/catalog/page-61","retryCount":3}`,
    `${green('INFO')}  CheerioCrawler: All requests from the queue have been processed, the crawler will shut down.`,
    `${green('INFO')}  CheerioCrawler: Final request statistics: {"requestsFinished":60,"requestsFailed":1,"retryHistogram":[57,2,0,1],"requestAvgFinishedDurationMillis":284}`,
    `${red('ERROR')} Run failed: 1 request could not be processed (see above).`,
  );
  return lines;
}

async function shoot(page: Page, file: string) {
  await page.screenshot({ path: join(docs, file) });
  console.log(`wrote docs/${file}`);
}

async function running(server: TestServer, page: Page) {
  const id = await createJob(server, 'build', { actId: 'my-scraper', buildNumber: '0.3.12' });
  const text = stamped(buildLines);
  const cut = text.lastIndexOf('\n', text.indexOf('Step 7/8')) + 1;
  await append(server, id, text.slice(0, cut));
  await page.goto(`${server.url}/logs/${id}`);
  await page.locator('#follow-state[data-mode="live"]').waitFor({ timeout: 15_000 });
  // A progress line still being written (no newline yet), as a live build shows it.
  await append(server, id, `${new Date().toISOString()} ${cyan('⠹')} Exporting layers 63% ${gray('[=========>      ]')}`);
  await page.locator('#content .row', { hasText: 'Exporting layers' }).waitFor({ timeout: 15_000 });
  await shoot(page, 'viewer-running.png');
  await finish(server, id);
}

async function finished(server: TestServer, page: Page) {
  const id = await createJob(server, 'run', { actId: 'my-scraper', buildNumber: '0.3.12' });
  await append(server, id, stamped(runLines()));
  await finish(server, id, 'FAILED', 'run');
  await page.goto(`${server.url}/logs/${id}`);
  await page.locator('.end-marker').waitFor({ timeout: 15_000 });
  // A search, with its match scrolled into view (the end marker is still on screen).
  await page.locator('#search').fill('selector');
  await page.locator('#search-count', { hasText: '1 of 1' }).waitFor({ timeout: 15_000 });
  await page.locator('mark.current').waitFor({ timeout: 15_000 });
  await shoot(page, 'viewer-finished.png');
}

async function main() {
  mkdirSync(docs, { recursive: true });
  const server = await startTestServer();
  const browser = await launchChromium({ width: 1280, height: 720 });
  try {
    await running(server, await browser.context.newPage());
    await finished(server, await browser.context.newPage());
  } finally {
    await browser.close();
    await server.stop();
  }
}

await main();
