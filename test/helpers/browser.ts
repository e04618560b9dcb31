import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestServer, type TestServer } from './server.js';

/** Debian's Chromium (`npm test` installs it: scripts/ensure-test-tools.sh). Playwright never downloads a browser here. */
export const CHROMIUM = process.env.BUILDLOG_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** Chromium with a fresh profile, removed on close. Throws a clear error when Chromium is not installed. */
export async function launchChromium(options: { width?: number; height?: number; scale?: number } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium is not installed at ${CHROMIUM}: the viewer tests need it (apt-get update && apt-get install -y chromium; npm test does this as root)`);
  }
  const userDataDir = mkdtempSync(join(tmpdir(), 'buildlog-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: options.width ?? 1280, height: options.height ?? 800 },
      deviceScaleFactor: options.scale ?? 1,
      timeout: 30_000,
    });
    return {
      context,
      async close() {
        await context.close().catch(() => undefined);
        rmSync(userDataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(userDataDir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * The real server on loopback and Chromium, for the tests of the `describe` this is called in: started
 * before them, closed after. Uncaught errors in a page fail the test that made it; without Chromium
 * every test that asks for it fails (never skips) with the error naming the package.
 */
export function pagesOfTestServer() {
  let server: TestServer | undefined;
  let browser: Browser | undefined;
  let launchError: unknown;
  const pageErrors: string[] = [];
  before(async () => {
    server = await startTestServer();
    try {
      browser = await launchChromium();
    } catch (err) {
      launchError = err;
    }
  });
  afterEach(() => {
    assert.deepEqual(pageErrors.splice(0), [], 'no uncaught errors in the page');
  });
  after(async () => {
    await browser?.close();
    await server?.stop();
  });
  const pages = {
    /** The server (once the tests run). */
    get server(): TestServer {
      return server!;
    },
    browser(): Browser {
      if (!browser) throw launchError;
      return browser;
    },
    async newPage(): Promise<Page> {
      const page = await pages.browser().context.newPage();
      page.on('pageerror', (err) => pageErrors.push(err.message));
      return page;
    },
    /** A new page at `url`: a whole address, or a path on the server. */
    async open(url: string): Promise<Page> {
      const page = await pages.newPage();
      await page.goto(url.startsWith('/') ? `${server!.url}${url}` : url);
      return page;
    },
  };
  return pages;
}
