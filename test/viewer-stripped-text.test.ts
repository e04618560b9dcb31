// One ANSI grammar: the viewer's text (what a row shows and what search matches) is the server's stripped
// view (`raw` off) of the same bytes. The page's own modules run in Node on a corpus of every kind of
// sequence, cut at every byte; then Debian's Chromium shows a log from the real server.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LogModel, plainText } from '../web/log-model.js';
import { withoutMarkers } from '../web/stripped-text.js';
import { strippedView } from '../src/text/stripped-view.js';
import { pagesOfTestServer } from './helpers/browser.js';
import { append, createJob, finish } from './helpers/server.js';
import { seededRandom } from './helpers/random.js';
import './helpers/viewer-hooks.js';

const E = '\x1b';
const TS = '2026-11-30T10:00:00.000Z ';
const T = { timeout: 60_000 };
const WAIT = { timeout: 15_000 };

/** Lines of every kind the stripped view deals with; the last has no newline (a log still being written). */
const LINES = [
  `${TS}${E}[1;31mred bold${E}[0m plain ${E}[38;5;208morange${E}[39m ${E}[38:2::1:2:3mcolon form${E}[m\n`,
  `cursor${E}[2K${E}[1G moves ${E}[10;20H${E}[?25l private${E}[?25h ${E}[1 qintermediate\n`,
  `title ${E}]0;window title${E}\\ST and ${E}]2;other title\x07BEL gone\n`,
  `link ${E}]8;;https://example.test/a?b=1\x07the docs${E}]8;;\x07, ${E}]8;id=7;http://x.test${E}\\x${E}]8;;${E}\\, ${E}]8;;javascript:alert(1)\x07bad${E}]8;;\x07 end\n`,
  `dcs ${E}Pq#0;2;hidden\x07#1${E}\\ after, apc ${E}_Gf=100;hidden${E}\\ after, pm ${E}^hidden${E}\\ after, sos ${E}Xhidden${E}\\ after\n`,
  `c1: \u009b31mcsi\u009b0m \u009d0;window title\u009c \u0090hidden\u009c \u009ehidden\u009c \u009fhidden\u009c \u0098hidden\u009c nel\u0085 done ©\n`,
  'progress 10%\rprogress 55%\rprogress 100%\r\n',
  'back\bspace a\x08b bell\x07 nul\x00 del\x7f tab\there\n',
  `cancel ${E}Pdcs\x18 can ${E}]0;osc\x1a sub ${E}]0;unterminated osc\n`,
  `esc at the end ${E}\n`,
  `nF ${E}(B${E})0 Fe ${E}7${E}8${E}c lone ${E}${E}[32mgreen${E}[0m ${E}[12;\n`,
  `html <b>&amp;</b> "quotes" 'x' naïve ✓ 🚀 中文\n`,
  `${E}[0Ksection_start:1700000000:build[collapsed=false]\r${E}[0K${E}[36;1mBuilding ${E}Phidden${E}\\the app${E}[0;m\n`,
  `inside ${E}[33mthe${E}[0m section\n`,
  `${E}[0Ksection_end:1700000009:build\r${E}[0K\n`,
  `${TS}::group::Install ${E}[1mdeps${E}[0m\n`,
  `${TS}added 1 package\n`,
  `${TS}::endgroup::\n`,
  // A string past MAX_SEQUENCE_BODY (4096 bytes, counted in bytes): from the 4097th on it is text, and
  // that byte is the second of an "é".
  `long osc ${E}]0;x${'é'.repeat(2100)}\x07 after\n`,
  `partial last line ${E}[31mno newline${E}]0;cut`,
];
const LOG = Buffer.from(LINES.join(''));

/** The server's stripped view of the bytes, as a client decodes it. */
const serverText = (bytes: Buffer) => new TextDecoder().decode(strippedView(bytes));

/**
 * The viewer's text of what it has taken in: each line as it shows and search sees it, with its newline
 * (a line the stripped view drops whole, `::endgroup::`, is not there), then the partial last line.
 */
function viewerText(model: LogModel): string {
  let text = '';
  for (const line of model.lines) if (withoutMarkers(line) !== null) text += `${plainText(line)}\n`;
  if (model.partial !== '' && withoutMarkers(model.partial) !== null) text += plainText(model.partial);
  return text;
}

/** Feeds bytes to a LogModel as the page does (cut where given, one streaming decoder): its text at each cut and at the end. */
function viewerFed(bytes: Buffer, cuts: number[]): { text: string; atCuts: string[] } {
  const model = new LogModel();
  const decoder = new TextDecoder();
  const atCuts: string[] = [];
  let from = 0;
  for (const cut of cuts) {
    model.append(decoder.decode(bytes.subarray(from, cut), { stream: true }));
    from = cut;
    atCuts.push(viewerText(model));
  }
  model.append(decoder.decode(bytes.subarray(from)));
  return { text: viewerText(model), atCuts };
}

/** Whether `cut` falls inside a UTF-8 character (the page then waits for the rest of it). */
const insideChar = (bytes: Buffer, cut: number) => cut < bytes.length && (bytes[cut]! & 0xc0) === 0x80;

describe('the viewer strips as the server does (web/stripped-text.js in Node)', () => {
  test('the corpus: every line the same text, and nothing of what the server removes', () => {
    const expected = serverText(LOG);
    assert.equal(viewerFed(LOG, []).text, expected);
    // What the corpus is for: these bodies and controls are not text on either side.
    for (const gone of ['hidden', 'window title', 'other title', 'javascript', '\r', '\b', '\x07', '\u009b', '\u009c', '\u0085', 'section_', '::']) {
      assert.ok(!expected.includes(gone), `the stripped view has no ${JSON.stringify(gone)}`);
    }
    assert.ok(expected.includes('progress 10%progress 55%progress 100%\n'), 'carriage returns go, the text around them stays');
    assert.ok(expected.includes(`long osc ${'\ufffd'}${'é'.repeat(53)} after\n`), 'sequence bounds are counted in bytes');
    assert.ok(expected.includes(`${TS}Install deps\n${TS}added 1 package\nlong osc`), 'a group line shows its title, its end line goes');
  });

  test('cut at every byte: after the first part and after both, the text a read of the log would return', () => {
    const whole = serverText(LOG);
    for (let cut = 0; cut <= LOG.length; cut++) {
      const { text, atCuts } = viewerFed(LOG, [cut]);
      if (!insideChar(LOG, cut)) assert.equal(atCuts[0], serverText(LOG.subarray(0, cut)), `after the bytes before ${cut}`);
      assert.equal(text, whole, `cut at ${cut}`);
    }
  });

  test('seeded random logs of sequence pieces, cut at random, agree', () => {
    // Pieces that start, end, cut and nest sequences in every order.
    const rnd = seededRandom(0x2545f491);
    const pieces = [
      E, `${E}[`, `${E}]`, `${E}P`, `${E}X`, `${E}^`, `${E}_`, `${E}\\`, `${E}[31m`, `${E}[0m`, `${E}[1;`, `${E}]8;;https://a.test/x\x07`, `${E}]8;;\x07`,
      `${E}]8;;http://b.test${E}\\`, `${E}]8;;${E}\\`, '\u009b', '\u009c', '\u009d', '\u0090', '\u0085', '\x07', '\r', '\b', '\n', '\t', '\x18', '\x00', '\x7f',
      'm', '[', ']', ';', '1', 'K', ' ', 'text', 'é', '🚀', '©', '::', '::group::', '::endgroup::', TS, 'section_start:1:a\r', 'section_end:2:a\r', `${E}[0K`,
    ];
    for (let round = 0; round < 2000; round++) {
      let log = '';
      for (let n = 1 + rnd(16); n > 0; n--) log += pieces[rnd(pieces.length)];
      const bytes = Buffer.from(log);
      const cuts = [rnd(bytes.length + 1)];
      cuts.push(cuts[0]! + rnd(bytes.length + 1 - cuts[0]!));
      assert.equal(viewerFed(bytes, cuts).text, serverText(bytes), `round ${round}: ${JSON.stringify(log)} cut at ${cuts}`);
    }
  });
});

describe('the viewer strips as the server does (Chromium)', () => {
  const pages = pagesOfTestServer();

  test('every row shows its line of the raw=0 read; search counts what that read holds', T, async () => {
    const server = pages.server;
    const id = await createJob(server);
    const res = await append(server, id, LOG);
    assert.ok(res.ok, `${res.status} ${await res.text()}`);
    assert.ok((await finish(server, id)).ok);
    const stripped = await (await fetch(`${server.url}/v2/logs/${id}`)).text();
    // The read's lines, by the raw line each comes from (the server drops the `::endgroup::` line whole).
    const serverLines = stripped.split('\n');
    const expected = new Map<number, string>();
    LINES.forEach((line, i) => {
      if (line === `${TS}::endgroup::\n`) return;
      expected.set(i + 1, serverLines.shift()!);
    });

    const page = await pages.open(`/logs/${id}`);
    await page.locator('.end-marker').waitFor(WAIT);
    const rows = await page.locator('#content .row:has(a.ln)').evaluateAll((els) =>
      els.map((e) => ({ n: Number(e.querySelector('a.ln')!.getAttribute('data-n')), text: e.querySelector('.tx')!.textContent })),
    );
    // Every line has a row but the two that only end a section.
    assert.equal(rows.length, LINES.length - 2);
    for (const { n, text } of rows) assert.equal(text, expected.get(n), `row of line ${n}`);

    const count = async (query: string) => {
      await page.locator('#search').fill(query);
      await page.locator('#search').press('Enter');
      await page.waitForFunction((q) => document.getElementById('search-form')!.dataset.result !== '' && (document.getElementById('search') as HTMLInputElement).value === q, query, WAIT);
      return page.locator('#search-count').textContent();
    };
    const occurrences = (query: string) => stripped.toLowerCase().split(query).length - 1;
    assert.equal(await count('hidden'), 'no matches', 'string bodies are not text');
    assert.equal(await count('window title'), 'no matches');
    assert.equal(occurrences('after'), 5);
    assert.match((await count('after')) ?? '', /^\d+ of 5$/);
    assert.match((await count('progress 10%progress')) ?? '', /^\d+ of 1$/);
    await page.close();
  });
});
