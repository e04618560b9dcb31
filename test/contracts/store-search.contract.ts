/**
 * Store contract, part three: searchLogs. Called from storeContract with its `withStore`, so it runs
 * against every backend. Line numbers are checked against the viewer's rule: 1 + the newlines between
 * the first retained byte and the line.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRecord } from '../../src/core/job.js';
import type { LogSearchQuery, Store } from '../../src/store/store.js';
import { makeJob, type WithStore } from './store.contract.js';

const U1 = 'searcher000000001';
const U2 = 'searcher000000002';

async function put(store: Store, job: JobRecord, ...parts: string[]): Promise<void> {
  await store.createJob(job);
  for (const p of parts) await store.append(job.id, Buffer.from(p));
}

/** What the viewer shows as line numbers for the retained log. */
async function viewerLine(store: Store, jobId: string, offset: number): Promise<number> {
  const info = (await store.logInfo(jobId))!;
  const slice = (await store.readLog(jobId, info.start, offset - info.start))!;
  return 1 + slice.data.toString('latin1').split('\n').length - 1;
}

export function storeSearchContract(withStore: WithStore): void {
  const q = (text: string, over: Partial<LogSearchQuery> = {}): LogSearchQuery => ({ userId: U1, text, offset: 0, limit: 20, linesPerJob: 5, ...over });

  describe('log search', () => {
    test('finds the user\'s jobs whose log holds the text, newest first, with line numbers, offsets and clean text', async () => {
      await withStore({}, async ({ store }) => {
        const old = makeJob({ userId: U1, startedAt: 1_000 });
        const recent = makeJob({ userId: U1, startedAt: 2_000, kind: 'run' });
        const other = makeJob({ userId: U2, startedAt: 3_000 });
        const none = makeJob({ userId: U1, startedAt: 4_000 });
        await put(store, old, 'compiling\nfetch failed: ECONN', 'RESET by peer\nok\n');
        await put(store, recent, 'a\nb\n\x1b[31mError: read econnreset\x1b[0m at socket\nc\nECONNRESET again\n');
        await put(store, other, 'ECONNRESET for someone else\n');
        await put(store, none, 'all good\n');
        const page = await store.searchLogs(q('ECONNRESET'));
        assert.equal(page.total, 2);
        assert.deepEqual(page.hits.map((h) => h.job.id), [recent.id, old.id]);
        assert.deepEqual(page.hits[0]!.job, recent, 'hits carry the whole job');
        const [r, o] = page.hits;
        assert.deepEqual(r!.lines.map((l) => [l.line, l.text]), [[3, 'Error: read econnreset at socket'], [5, 'ECONNRESET again']]);
        assert.equal(r!.moreLines, false);
        for (const hit of page.hits) {
          for (const l of hit.lines) assert.equal(l.line, await viewerLine(store, hit.job.id, l.offset), 'numbered as the viewer numbers');
        }
        assert.deepEqual(o!.lines, [{ line: 2, offset: 10, text: 'fetch failed: ECONNRESET by peer' }], 'a line written in two appends');
        assert.equal((await store.searchLogs(q('econnreset', { userId: U2 }))).hits[0]!.job.id, other.id);
        assert.deepEqual(await store.searchLogs(q('no such text')), { total: 0, hits: [] });
        // Quotes and FTS syntax are plain text.
        await put(store, makeJob({ userId: U1 }), 'say "hi" OR NOT *\n');
        assert.equal((await store.searchLogs(q('"hi" OR NOT *'))).total, 1);
      });
    });

    test('pages jobs with offset and limit; linesPerJob bounds the lines and says there are more', async () => {
      await withStore({}, async ({ store }) => {
        const jobs = [];
        for (let i = 0; i < 5; i++) {
          const job = makeJob({ userId: U1, startedAt: 1_000 + i });
          await put(store, job, Array.from({ length: 3 + i }, (_, k) => `step ${k}: needle-${i}\n`).join(''));
          jobs.push(job);
        }
        const newestFirst = jobs.map((j) => j.id).reverse();
        const p1 = await store.searchLogs(q('needle', { limit: 2, linesPerJob: 3 }));
        assert.equal(p1.total, 5);
        assert.deepEqual(p1.hits.map((h) => h.job.id), newestFirst.slice(0, 2));
        assert.equal(p1.hits[0]!.lines.length, 3);
        assert.equal(p1.hits[0]!.moreLines, true);
        const p3 = await store.searchLogs(q('needle', { offset: 4, limit: 2, linesPerJob: 3 }));
        assert.deepEqual(p3.hits.map((h) => h.job.id), newestFirst.slice(4));
        assert.equal(p3.hits[0]!.moreLines, false);
      });
    });

    test('a finished job\'s last line without a newline is found; a large log is searched whole', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob({ userId: U1 });
        const filler = 'x'.repeat(120) + '\n';
        await put(store, job, filler.repeat(5_000), 'middle marker\n', filler.repeat(5_000), 'tail marker');
        assert.deepEqual((await store.searchLogs(q('middle marker'))).hits[0]!.lines.map((l) => l.line), [5_001]);
        await store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: 1 });
        const tail = (await store.searchLogs(q('tail marker'))).hits[0]!.lines[0]!;
        assert.deepEqual([tail.line, tail.offset, tail.text], [10_002, 121 * 10_000 + 14, 'tail marker']);
      });
    });

    test('kept in step with retention and deletes', async () => {
      await withStore({ retentionChars: 200 }, async ({ store }) => {
        const job = makeJob({ userId: U1 });
        await put(store, job, 'first needle line\n', 'y'.repeat(150) + '\n');
        assert.equal((await store.searchLogs(q('first needle'))).total, 1);
        await store.append(job.id, Buffer.from('second needle line\n' + 'z'.repeat(60) + '\n'));
        assert.equal((await store.searchLogs(q('first needle'))).total, 0, 'trimmed lines are not found');
        const hit = (await store.searchLogs(q('needle'))).hits[0]!;
        assert.deepEqual(hit.lines.map((l) => l.text), ['second needle line']);
        assert.equal(hit.lines[0]!.line, await viewerLine(store, job.id, hit.lines[0]!.offset), 'numbered from the window');
        await store.deleteJob(job.id);
        assert.deepEqual(await store.searchLogs(q('needle')), { total: 0, hits: [] });
      });
    });

    test('texts under three characters find nothing; case is folded beyond ASCII', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob({ userId: U1 });
        await put(store, job, 'ab cd\nÉCHEC de la compilation\nОШИБКА: сборка\n');
        for (const short of ['ab', 'é', 'd']) assert.deepEqual(await store.searchLogs(q(short)), { total: 0, hits: [] }, `"${short}"`);
        assert.deepEqual((await store.searchLogs(q('échec'))).hits[0]!.lines.map((l) => [l.line, l.text]), [[2, 'ÉCHEC de la compilation']]);
        assert.deepEqual((await store.searchLogs(q('ошибка'))).hits[0]!.lines.map((l) => l.line), [3]);
      });
    });

    test('a line across stored rows or ANSI codes is found whole; % and _ are plain text', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob({ userId: U1 });
        // One append over 256 KiB (stores split it into rows): the marker line crosses byte 262,144.
        const filler = 'x'.repeat(99) + '\n';
        const crossing = 'p'.repeat(40) + ' CROSS-ROW marker\n';
        await put(store, job, filler.repeat(2_621) + crossing + filler.repeat(10), 'ECONN\x1b[1mRESET\x1b[0m mid-word\n', '100%_done\n');
        const across = (await store.searchLogs(q('cross-row marker'))).hits[0]!.lines;
        assert.deepEqual(across.map((l) => [l.line, l.offset, l.text]), [[2_622, 262_100, crossing.trimEnd()]]);
        assert.deepEqual((await store.searchLogs(q('econnreset mid'))).hits[0]!.lines.map((l) => [l.line, l.text]), [[2_633, 'ECONNRESET mid-word']]);
        assert.equal((await store.searchLogs(q('0%_d'))).total, 1);
        assert.equal((await store.searchLogs(q('0_%d'))).total, 0, 'no wildcards');
        assert.equal((await store.searchLogs(q('1%done'))).total, 0, 'no wildcards');
      });
    });

    test('a match only in the bytes retention cut from a line is none; the cut line is the first', async () => {
      await withStore({ retentionChars: 200 }, async ({ store }) => {
        const job = makeJob({ userId: U1 });
        await put(store, job, 'old needle\n' + 'k'.repeat(100) + '\n');
        assert.equal((await store.searchLogs(q('old needle'))).total, 1);
        // 234 characters: the window now starts inside the k line, after "old needle".
        await store.append(job.id, Buffer.from('n'.repeat(120) + '\n'));
        assert.ok((await store.logInfo(job.id))!.start > 11);
        assert.deepEqual(await store.searchLogs(q('old needle')), { total: 0, hits: [] });
        const hit = (await store.searchLogs(q('kkk'))).hits[0]!;
        assert.deepEqual(hit.lines.map((l) => l.line), [1]);
        assert.equal(hit.lines[0]!.offset, (await store.logInfo(job.id))!.start, 'the cut line starts at the window');
      });
    });

    test('the index survives a reopen and catches up with appends made meanwhile', async () => {
      await withStore({}, async (sut) => {
        const job = makeJob({ userId: U1 });
        await put(sut.store, job, 'before close\n');
        assert.equal((await sut.store.searchLogs(q('before close'))).total, 1);
        await sut.store.append(job.id, Buffer.from('appended at the end\n'));
        await sut.store.close();
        const store = await sut.reopen();
        assert.equal((await store.searchLogs(q('before close'))).total, 1);
        assert.deepEqual((await store.searchLogs(q('at the end'))).hits[0]!.lines.map((l) => l.line), [2]);
      });
    });
  });
}
