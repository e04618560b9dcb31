/**
 * Store contract, part four: what `buildlog migrate` copies with (listUsers, importLog). Called from
 * storeContract with its `withStore`, so it runs against every backend: a log imported into one store
 * must read, resume, verify and search exactly as it did in the store it came from.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import type { ImportedLog } from '../../src/store/store.js';
import { makeJob, makeUser, readAll, type WithStore } from './store.contract.js';

/** A log of `lines` numbered lines with multi-byte characters, whose first `start` bytes were trimmed away at the source. */
function sourceLog(lines: number, start: number): { all: Buffer; log: ImportedLog } {
  const all = Buffer.from(Array.from({ length: lines }, (_, i) => `line ${i} — ünïcödé ${'x'.repeat(i % 50)}\n`).join(''));
  // The source's window starts at a line (a character boundary, as retention leaves it).
  const cut = start === 0 ? 0 : all.indexOf('\n', start) + 1;
  return { all, log: { start: cut, data: all.subarray(cut), crc32: crc32(all) } };
}

export function storeImportContract(withStore: WithStore): void {
  describe('copying from another store', () => {
    test('listUsers lists every user, oldest first', async () => {
      await withStore({}, async ({ store }) => {
        assert.deepEqual(await store.listUsers(), []);
        const users = [makeUser({ createdAt: 3_000 }), makeUser({ createdAt: 1_000 }), makeUser({ createdAt: 2_000 })];
        for (const u of users) await store.createUser(u);
        assert.deepEqual(await store.listUsers(), [users[1], users[2], users[0]]);
      });
    });

    test('an imported log keeps its offsets, length and checksum; a running job goes on appending after it', async () => {
      await withStore({}, async (sut) => {
        const job = makeJob({ status: 'RUNNING' });
        await sut.store.createJob(job);
        const { all, log } = sourceLog(20_000, 100_000);
        assert.ok(log.data.length > 600_000, 'spans several stored rows');
        await sut.store.importLog(job.id, log);
        assert.deepEqual(await sut.store.logInfo(job.id), { start: log.start, length: all.length });
        assert.deepEqual(await sut.store.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
        const read = await readAll(sut.store, job.id, 0, 70_000);
        assert.equal(read.start, log.start, 'a read from 0 starts at the window');
        assert.ok(read.data.equals(log.data));
        const mid = log.start + 300_001;
        assert.ok((await sut.store.readLog(job.id, mid, 10))!.data.equals(all.subarray(mid, mid + 10)), 'a Range read across rows');

        const tail = all.subarray(all.length - 40);
        assert.deepEqual(await sut.store.append(job.id, tail, all.length - 40), { kind: 'duplicate', length: all.length }, 'a retry of the last bytes is known');
        assert.deepEqual(await sut.store.append(job.id, Buffer.from('more\n'), all.length), { kind: 'appended', start: all.length, end: all.length + 5 });
        const whole = Buffer.concat([all, Buffer.from('more\n')]);
        assert.deepEqual(await sut.store.logChecksum(job.id), { length: whole.length, crc32: crc32(whole) }, 'the checksum goes on from the source\'s');

        const page = await sut.store.searchLogs({ userId: job.userId, text: 'line 19999 — ünï', offset: 0, limit: 10, linesPerJob: 5 });
        assert.deepEqual(page.hits.map((h) => [h.job.id, h.lines.map((l) => l.offset)]), [[job.id, [all.indexOf('line 19999 ')]]], 'search sees the imported bytes');

        const reopened = await sut.reopen();
        assert.deepEqual(await reopened.logInfo(job.id), { start: log.start, length: whole.length }, 'durable');
        assert.ok((await readAll(reopened, job.id)).data.equals(whole.subarray(log.start)));
      });
    });

    test('a finished job takes its log as it is: it reads the same once packed, and refuses appends', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob({ status: 'FAILED', finishedAt: 1_700_000_100_000, exitCode: 3 });
        await store.createJob(job);
        // The store may pack the finished job's empty log before its bytes come.
        await store.packFinishedLogs();
        const { all, log } = sourceLog(3_000, 0);
        await store.importLog(job.id, log);
        assert.ok((await readAll(store, job.id)).data.equals(all), 'reads whole before it is packed again');
        await store.packFinishedLogs();
        assert.ok((await readAll(store, job.id)).data.equals(all));
        assert.deepEqual(await store.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
        assert.deepEqual(await store.append(job.id, Buffer.from('x')), { kind: 'terminal', status: 'FAILED' });
        assert.deepEqual(await store.getJob(job.id), job, 'the job record is untouched');
      });
    });

    test('a checksum the source did not have stays unknown; an empty log can be imported as its window alone', async () => {
      await withStore({}, async ({ store }) => {
        const unknown = makeJob();
        await store.createJob(unknown);
        await store.importLog(unknown.id, { start: 0, data: Buffer.from('old log\n'), crc32: null });
        assert.deepEqual(await store.logChecksum(unknown.id), { length: 8, crc32: null });
        const empty = makeJob();
        await store.createJob(empty);
        await store.importLog(empty.id, { start: 0, data: Buffer.alloc(0), crc32: 0 });
        assert.deepEqual(await store.logInfo(empty.id), { start: 0, length: 0 });
        assert.deepEqual(await store.append(empty.id, Buffer.from('a'), 0), { kind: 'appended', start: 0, end: 1 });
      });
    });

    test('the importing store\'s retention applies, as to an append', async () => {
      await withStore({ retentionChars: 10_000 }, async ({ store }) => {
        const job = makeJob();
        await store.createJob(job);
        const { all, log } = sourceLog(2_000, 0);
        await store.importLog(job.id, log);
        const info = (await store.logInfo(job.id))!;
        assert.equal(info.length, all.length);
        const kept = all.subarray(info.start).toString('utf8');
        assert.ok(info.start > 0 && [...kept].length <= 10_000 && [...kept].length > 9_000, `kept ${[...kept].length} characters`);
        assert.ok((await readAll(store, job.id)).data.equals(all.subarray(info.start)));
      });
    });

    test('a log is imported only into an existing job with an empty log', async () => {
      await withStore({}, async ({ store }) => {
        const log: ImportedLog = { start: 0, data: Buffer.from('copied\n'), crc32: crc32(Buffer.from('copied\n')) };
        await assert.rejects(store.importLog('nosuchjob00000000', log), /no job/);
        const job = makeJob();
        await store.createJob(job);
        await store.append(job.id, Buffer.from('live\n'));
        await assert.rejects(store.importLog(job.id, log), /not empty/);
        const twice = makeJob();
        await store.createJob(twice);
        await store.importLog(twice.id, log);
        await assert.rejects(store.importLog(twice.id, log), /not empty/);
        assert.ok((await readAll(store, job.id)).data.equals(Buffer.from('live\n')), 'a refused import changes nothing');
        assert.ok((await readAll(store, twice.id)).data.equals(log.data));
      });
    });
  });
}
