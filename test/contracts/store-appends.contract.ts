/**
 * Store contract, part: appends (offsets, duplicates, terminal jobs, concurrency) and reading slices
 * of a log. Called from storeContract, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { JobRecord } from '../../src/core/job.js';
import type { AppendResult } from '../../src/store/store.js';
import { b, makeJob, mustAppend, readAll, type WithJob, type WithStore } from './store-harness.js';

export function storeAppendsContract(withStore: WithStore, withJob: WithJob): void {
  describe('appends', () => {
    test('appends without an offset land contiguously and are read back exactly', async () => {
      await withJob({}, async (store, job) => {
        assert.deepEqual(await store.append(job.id, b('hello ')), { kind: 'appended', start: 0, end: 6 });
        assert.deepEqual(await store.append(job.id, b('wörld')), { kind: 'appended', start: 6, end: 12 });
        assert.deepEqual(await store.append(job.id, b('\n')), { kind: 'appended', start: 12, end: 13 });
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 13 });
        const s = await store.readLog(job.id, 0, 1000);
        assert.deepEqual(s, { start: 0, end: 13, data: b('hello wörld\n') });
      });
    });

    test('binary bytes (NUL, invalid UTF-8, CR) are stored verbatim', async () => {
      await withJob({}, async (store, job) => {
        const bin = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 0x0d, 0x0a, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0]);
        await mustAppend(store, job.id, bin);
        const rnd = randomBytes(70_000);
        await mustAppend(store, job.id, rnd);
        const all = await readAll(store, job.id);
        assert.ok(all.data.equals(Buffer.concat([bin, rnd])));
      });
    });

    test('`expectedOffset` equal to the current length appends', async () => {
      await withJob({}, async (store, job) => {
        assert.deepEqual(await store.append(job.id, b('abc'), 0), { kind: 'appended', start: 0, end: 3 });
        assert.deepEqual(await store.append(job.id, b('def'), 3), { kind: 'appended', start: 3, end: 6 });
        assert.deepEqual(await store.append(job.id, b('g'), 6), { kind: 'appended', start: 6, end: 7 });
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 7, data: b('abcdefg') });
      });
    });

    test('a retry of a chunk stored whole at that offset is `duplicate` and writes nothing', async () => {
      await withJob({}, async (store, job) => {
        await mustAppend(store, job.id, 'abc', 0);
        await mustAppend(store, job.id, 'def', 3);
        await mustAppend(store, job.id, 'ghi', 6);
        // The last chunk, the first chunk, a middle one, one spanning two stored chunks, a sub-range.
        assert.deepEqual(await store.append(job.id, b('ghi'), 6), { kind: 'duplicate', length: 9 });
        assert.deepEqual(await store.append(job.id, b('abc'), 0), { kind: 'duplicate', length: 9 });
        assert.deepEqual(await store.append(job.id, b('def'), 3), { kind: 'duplicate', length: 9 });
        assert.deepEqual(await store.append(job.id, b('cdefg'), 2), { kind: 'duplicate', length: 9 });
        assert.deepEqual(await store.append(job.id, b('abcdefghi'), 0), { kind: 'duplicate', length: 9 });
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 9 });
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 9, data: b('abcdefghi') });
        // And the log goes on normally afterwards.
        assert.deepEqual(await store.append(job.id, b('jk'), 9), { kind: 'appended', start: 9, end: 11 });
      });
    });

    test('a retry with different bytes, a gap or a partial overlap is `offset-mismatch` with the length', async () => {
      await withJob({}, async (store, job) => {
        await mustAppend(store, job.id, 'abcdef', 0);
        const mismatch = { kind: 'offset-mismatch', length: 6 };
        assert.deepEqual(await store.append(job.id, b('xyz'), 3), mismatch, 'different bytes at a stored offset');
        assert.deepEqual(await store.append(job.id, b('abX'), 0), mismatch, 'differs in its last byte');
        assert.deepEqual(await store.append(job.id, b('more'), 7), mismatch, 'a gap of one byte');
        assert.deepEqual(await store.append(job.id, b('more'), 1000), mismatch, 'far past the end');
        assert.deepEqual(await store.append(job.id, b('efGH'), 4), mismatch, 'overlaps the end and extends it');
        assert.deepEqual(await store.append(job.id, b('defghi'), 3), mismatch, 'stored prefix, new suffix');
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 6 });
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 6, data: b('abcdef') });
      });
    });

    test('appending to a terminal job is refused with its status; to an unknown job is `not-found`', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob();
        await store.createJob(job);
        await mustAppend(store, job.id, 'before');
        await store.updateJobStatus(job.id, 'RUNNING', { status: 'FAILED', finishedAt: 1_700_000_001_000 });
        assert.deepEqual(await store.append(job.id, b('after')), { kind: 'terminal', status: 'FAILED' });
        assert.deepEqual(await store.append(job.id, b('after'), 6), { kind: 'terminal', status: 'FAILED' });
        assert.deepEqual(await store.append(job.id, b('before'), 0), { kind: 'terminal', status: 'FAILED' });
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 6 });
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 6, data: b('before') });

        for (const status of ['SUCCEEDED', 'TIMED-OUT', 'ABORTED'] as const) {
          const done = makeJob({ status, finishedAt: 1_700_000_002_000 });
          await store.createJob(done);
          assert.deepEqual(await store.append(done.id, b('x')), { kind: 'terminal', status });
          assert.deepEqual(await store.logInfo(done.id), { start: 0, length: 0 });
        }
        // Not terminal: appends are accepted in every other status.
        for (const status of ['READY', 'ABORTING', 'TIMING-OUT'] as const) {
          const live = makeJob({ status });
          await store.createJob(live);
          assert.deepEqual(await store.append(live.id, b('x')), { kind: 'appended', start: 0, end: 1 });
        }

        assert.deepEqual(await store.append('doesNotExist00000', b('x')), { kind: 'not-found' });
        assert.deepEqual(await store.append('doesNotExist00000', b('x'), 0), { kind: 'not-found' });
      });
    });

    test('an empty append changes nothing', async () => {
      await withJob({}, async (store, job) => {
        assert.deepEqual(await store.append(job.id, Buffer.alloc(0)), { kind: 'appended', start: 0, end: 0 });
        await mustAppend(store, job.id, 'abc');
        assert.deepEqual(await store.append(job.id, Buffer.alloc(0)), { kind: 'appended', start: 3, end: 3 });
        assert.deepEqual(await store.append(job.id, Buffer.alloc(0), 3), { kind: 'appended', start: 3, end: 3 });
        assert.equal((await store.append(job.id, Buffer.alloc(0), 5)).kind, 'offset-mismatch');
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 3 });
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 3, data: b('abc') });
        assert.deepEqual(await store.append(job.id, b('d'), 3), { kind: 'appended', start: 3, end: 4 });
      });
    });

    test('many appends to many logs issued in the same tick all land, in call order per log', async () => {
      await withStore({}, async ({ store }) => {
        const LOGS = 24;
        const PER_LOG = 60;
        const jobs: JobRecord[] = [];
        for (let i = 0; i < LOGS; i++) {
          const job = makeJob();
          await store.createJob(job);
          jobs.push(job);
        }
        // Interleaved across logs; every other log uses expectedOffset, which only works if call order is kept.
        const expected = jobs.map(() => [] as Buffer[]);
        const offsets = jobs.map(() => 0);
        const calls: { log: number; start: number; data: Buffer; promise: Promise<AppendResult> }[] = [];
        for (let k = 0; k < PER_LOG; k++) {
          for (let i = 0; i < LOGS; i++) {
            const data = b(`[log ${i} chunk ${k}${'.'.repeat((i * 7 + k * 13) % 50)}]\n`);
            const start = offsets[i]!;
            offsets[i] = start + data.length;
            expected[i]!.push(data);
            const promise = store.append(jobs[i]!.id, data, i % 2 === 0 ? start : undefined);
            calls.push({ log: i, start, data, promise });
          }
        }
        const results = await Promise.all(calls.map((c) => c.promise));
        results.forEach((r, n) => {
          const c = calls[n]!;
          assert.deepEqual(r, { kind: 'appended', start: c.start, end: c.start + c.data.length }, `call ${n} (log ${c.log})`);
        });
        for (let i = 0; i < LOGS; i++) {
          const want = Buffer.concat(expected[i]!);
          assert.deepEqual(await store.logInfo(jobs[i]!.id), { start: 0, length: want.length });
          const all = await readAll(store, jobs[i]!.id);
          assert.equal(all.data.toString(), want.toString(), `log ${i}`);
        }
      });
    });

    test('same-tick appends of mixed outcomes are each decided in call order', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob();
        await store.createJob(job);
        const promises = [
          store.append(job.id, b('aaa'), 0),
          store.append(job.id, b('aaa'), 0), // retry of the call before
          store.append(job.id, b('bbb'), 0), // conflicting
          store.append(job.id, b('ccc'), 3),
          store.append(job.id, b('zzz'), 100), // gap
          store.append(job.id, b('ddd')),
          store.append('doesNotExist00000', b('x')),
          store.append(job.id, b('eee'), 9),
        ];
        assert.deepEqual(await Promise.all(promises), [
          { kind: 'appended', start: 0, end: 3 },
          { kind: 'duplicate', length: 3 },
          { kind: 'offset-mismatch', length: 3 },
          { kind: 'appended', start: 3, end: 6 },
          { kind: 'offset-mismatch', length: 6 },
          { kind: 'appended', start: 6, end: 9 },
          { kind: 'not-found' },
          { kind: 'appended', start: 9, end: 12 },
        ]);
        assert.deepEqual(await store.readLog(job.id, 0, 100), { start: 0, end: 12, data: b('aaacccdddeee') });
      });
    });

    test('an append racing a terminal status change either lands before it or is refused, atomically', async () => {
      await withStore({}, async ({ store }) => {
        for (let round = 0; round < 20; round++) {
          const job = makeJob();
          await store.createJob(job);
          await mustAppend(store, job.id, 'first ');
          // Issued in the same tick, in both orders: the store decides; it must not half-apply.
          let appended: AppendResult;
          let updated: JobRecord | null;
          if (round % 2 === 0) {
            [appended, updated] = await Promise.all([
              store.append(job.id, b('second ')),
              store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED' }),
            ]);
          } else {
            [updated, appended] = await Promise.all([
              store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED' }),
              store.append(job.id, b('second ')),
            ]);
          }
          assert.equal(updated?.status, 'SUCCEEDED');
          const log = (await store.readLog(job.id, 0, 100))!;
          if (appended.kind === 'appended') {
            assert.deepEqual(appended, { kind: 'appended', start: 6, end: 13 });
            assert.equal(log.data.toString(), 'first second ');
          } else {
            assert.deepEqual(appended, { kind: 'terminal', status: 'SUCCEEDED' });
            assert.equal(log.data.toString(), 'first ');
          }
          assert.deepEqual(await store.logInfo(job.id), { start: 0, length: log.end });
          assert.deepEqual(await store.logState(job.id), { kind: 'build', status: 'SUCCEEDED', start: 0, length: log.end }, 'the status with the final length');
          // Once terminal, nothing more.
          assert.deepEqual(await store.append(job.id, b('third')), { kind: 'terminal', status: 'SUCCEEDED' });
          assert.deepEqual(await store.logInfo(job.id), { start: 0, length: log.end });
        }
      });
    });
  });

  describe('logState', () => {
    test('the window with the job\'s kind and status, as one read; null for an unknown job', async () => {
      await withJob({ retentionChars: 10 }, async (store, job) => {
        assert.deepEqual(await store.logState(job.id), { kind: 'build', status: 'RUNNING', start: 0, length: 0 });
        await mustAppend(store, job.id, 'abcdefghijklmno');
        assert.deepEqual(await store.logState(job.id), { kind: 'build', status: 'RUNNING', start: 5, length: 15 });
        await store.updateJobStatus(job.id, 'RUNNING', { status: 'ABORTED', finishedAt: 1_700_000_001_000 });
        assert.deepEqual(await store.logState(job.id), { kind: 'build', status: 'ABORTED', start: 5, length: 15 });
        const run = makeJob({ kind: 'run', status: 'READY' });
        await store.createJob(run);
        assert.deepEqual(await store.logState(run.id), { kind: 'run', status: 'READY', start: 0, length: 0 });
        assert.equal(await store.logState('nosuchjob0000000'), null);
      });
    });
  });

  describe('readLog', () => {
    test('pages by maxBytes, starts inside a chunk, and stops at the end', async () => {
      await withJob({}, async (store, job) => {
        const chunks = ['0123456789', 'abcdefghij', 'KLMNOPQRST', 'uvwxyz'];
        for (const c of chunks) await mustAppend(store, job.id, c);
        const all = chunks.join('');
        assert.deepEqual(await store.readLog(job.id, 0, 4), { start: 0, end: 4, data: b('0123') });
        assert.deepEqual(await store.readLog(job.id, 3, 4), { start: 3, end: 7, data: b('3456') });
        // Across chunk boundaries.
        assert.deepEqual(await store.readLog(job.id, 8, 15), { start: 8, end: 23, data: b(all.slice(8, 23)) });
        // Exactly one whole chunk.
        assert.deepEqual(await store.readLog(job.id, 10, 10), { start: 10, end: 20, data: b('abcdefghij') });
        // maxBytes beyond the end: never past it.
        assert.deepEqual(await store.readLog(job.id, 30, 100), { start: 30, end: 36, data: b('uvwxyz') });
        assert.deepEqual(await store.readLog(job.id, 35, 100), { start: 35, end: 36, data: b('z') });
        // At and past the end: an empty slice at the end.
        for (const from of [36, 37, 1_000_000]) {
          const s = await store.readLog(job.id, from, 100);
          assert.ok(s);
          assert.equal(s.start, 36);
          assert.equal(s.end, 36);
          assert.equal(s.data.length, 0);
        }
        // maxBytes 0 returns nothing at the requested offset.
        const none = await store.readLog(job.id, 5, 0);
        assert.ok(none);
        assert.equal(none.start, 5);
        assert.equal(none.end, 5);
        assert.equal(none.data.length, 0);
        // Every page size reassembles the log exactly.
        for (const page of [1, 3, 7, 10, 11, 64]) {
          const r = await readAll(store, job.id, 0, page);
          assert.equal(r.data.toString(), all, `page ${page}`);
          assert.equal(r.start, 0);
        }
        const from13 = await readAll(store, job.id, 13, 5);
        assert.equal(from13.data.toString(), all.slice(13));
      });
    });

    test('a large log written in many appends reads back exactly', async () => {
      await withJob({}, async (store, job) => {
        const parts: Buffer[] = [];
        for (let i = 0; i < 300; i++) {
          const p = randomBytes(1 + ((i * 7919) % 9000));
          parts.push(p);
          await mustAppend(store, job.id, p);
        }
        const want = Buffer.concat(parts);
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: want.length });
        assert.ok((await readAll(store, job.id, 0, 100_000)).data.equals(want));
        assert.ok((await readAll(store, job.id, 12_345, 4_096)).data.equals(want.subarray(12_345)));
        const mid = await store.readLog(job.id, 500_000, 300_000);
        assert.ok(mid);
        assert.equal(mid.start, 500_000);
        assert.equal(mid.end, Math.min(800_000, want.length));
        assert.ok(mid.data.equals(want.subarray(500_000, 800_000)));
      });
    });
  });
}
