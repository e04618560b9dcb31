/**
 * Store contract, part: durability across close and reopen, and the operations side (housekeeping,
 * integrity, backups). Called from storeContract, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { b, makeJob, makeUser, mustAppend, readAll, type WithJob, type WithStore } from './store-harness.js';

export function storeDurabilityContract(withStore: WithStore, withJob: WithJob): void {
  describe('durability', () => {
    test('close and reopen: the same users, jobs and log bytes; the log goes on where it was', async () => {
      const N = 50;
      await withStore({ retentionChars: N }, async (sut) => {
        const store = sut.store;
        const alice = makeUser({ username: 'alice' });
        const bob = makeUser({ username: 'bob' });
        await store.createUser(alice);
        await store.createUser(bob);
        const running = makeJob({ userId: alice.id, kind: 'run', buildId: 'someBuild00000000', startedAt: 5_000 });
        const finished = makeJob({ userId: bob.id, startedAt: 6_000 });
        const empty = makeJob({ userId: bob.id, startedAt: 7_000, actId: 'otherActor0000000' });
        await store.createJob(running);
        await store.createJob(finished);
        await store.createJob(empty);
        const longText = Array.from({ length: 80 }, (_, i) => `${i % 10}é🚀`).join('');
        const longBytes = b(longText);
        // Split inside a character (byte 34 is the middle of a 🚀).
        await mustAppend(store, running.id, longBytes.subarray(0, 34));
        await mustAppend(store, running.id, longBytes.subarray(34));
        const short = randomBytes(40);
        await mustAppend(store, finished.id, short);
        const done = await store.updateJobStatus(finished.id, 'RUNNING', {
          status: 'SUCCEEDED',
          exitCode: 0,
          statusMessage: 'ok',
          finishedAt: 8_000,
        });
        const runningInfo = await store.logInfo(running.id);
        const runningLog = (await readAll(store, running.id)).data;
        assert.equal(runningLog.toString(), Array.from(longText).slice(-N).join(''));
        await store.close();

        const again = await sut.reopen();
        assert.equal(await again.countUsers(), 2);
        assert.deepEqual(await again.userByTokenHash(alice.tokenHash), alice);
        assert.deepEqual(await again.userById(bob.id), bob);
        assert.deepEqual(await again.userByName('alice'), alice);
        await assert.rejects(again.createUser(makeUser({ username: 'bob' })));
        assert.deepEqual(await again.getJob(running.id), running);
        assert.deepEqual(await again.getJob(finished.id), done);
        assert.deepEqual(await again.getJob(empty.id), empty);
        assert.deepEqual(await again.latestJob(running.actId, 'build'), done);
        assert.deepEqual(await again.logInfo(running.id), runningInfo);
        assert.deepEqual(await again.logInfo(empty.id), { start: 0, length: 0 });
        assert.ok((await readAll(again, running.id)).data.equals(runningLog));
        assert.ok((await readAll(again, finished.id)).data.equals(short));
        // A retry of what was stored before the restart is recognised.
        assert.deepEqual(await again.append(finished.id, short, 0), { kind: 'terminal', status: 'SUCCEEDED' });
        const tail = longBytes.subarray(-10);
        assert.deepEqual(await again.append(running.id, tail, runningInfo!.length - tail.length), {
          kind: 'duplicate',
          length: runningInfo!.length,
        });
        // The log continues at its absolute offset and the window keeps working.
        const more = 'after restart: ñ🚀';
        await mustAppend(again, running.id, more, runningInfo!.length);
        const full = longText + more;
        const expectedTail = Array.from(full).slice(-N).join('');
        const info = await again.logInfo(running.id);
        assert.equal(info!.length, Buffer.byteLength(full));
        assert.equal(info!.start, info!.length - Buffer.byteLength(expectedTail));
        assert.equal((await readAll(again, running.id)).data.toString(), expectedTail);
        // The status machine state survived too.
        assert.equal(await again.updateJobStatus(finished.id, 'RUNNING', { status: 'FAILED' }), null);
        await again.close();

        // And a second reopen sees what the first one wrote.
        const third = await sut.reopen();
        assert.equal((await readAll(third, running.id)).data.toString(), expectedTail);
        await third.close();
      });
    });

    test('appends issued just before close are committed by it: every one acknowledged and there after reopen', async () => {
      await withJob({}, async (store, job, sut) => {
        const chunks = Array.from({ length: 50 }, (_, i) => b(`line ${i}\n`));
        const settled = Promise.allSettled(chunks.map((c) => store.append(job.id, c)));
        await store.close();
        const results = await settled;
        const again = await sut.reopen();
        const stored = (await readAll(again, job.id)).data;
        let acked = 0;
        for (const [i, r] of results.entries()) {
          if (r.status !== 'fulfilled') continue;
          acked++;
          const v = r.value;
          assert.equal(v.kind, 'appended', `append ${i}`);
          if (v.kind !== 'appended') continue;
          assert.equal(v.end - v.start, chunks[i]!.length);
          // Every acknowledged append is durable, exactly where it was acknowledged.
          assert.ok(stored.subarray(v.start, v.end).equals(chunks[i]!), `append ${i} after reopen`);
        }
        // close() waits for the appends it had accepted: none is lost or refused, and they are stored in call order.
        assert.equal(acked, chunks.length, 'every append issued before close was acknowledged');
        assert.ok(stored.equals(Buffer.concat(chunks)));
        await again.close();
      });
    });

    test('close is idempotent; a closed store refuses appends instead of losing them', async () => {
      await withJob({}, async (store, job) => {
        await store.close();
        await store.close();
        await assert.rejects(store.append(job.id, b('after close\n')));
      });
    });
  });

  describe('operations', () => {
    test('jobCounts counts jobs by kind and status', async () => {
      await withStore({}, async ({ store }) => {
        assert.deepEqual(await store.jobCounts(), []);
        const a = makeJob({ kind: 'build' });
        const b2 = makeJob({ kind: 'build' });
        const r = makeJob({ kind: 'run', status: 'READY' });
        for (const j of [a, b2, r]) await store.createJob(j);
        await store.updateJobStatus(a.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: 1_700_000_001_000 });
        const counts = (await store.jobCounts()).sort((x, y) => `${x.kind}${x.status}`.localeCompare(`${y.kind}${y.status}`));
        assert.deepEqual(counts, [
          { kind: 'build', status: 'RUNNING', count: 1 },
          { kind: 'build', status: 'SUCCEEDED', count: 1 },
          { kind: 'run', status: 'READY', count: 1 },
        ]);
      });
    });

    test('finishedBefore lists terminal jobs finished before a time, oldest first, never an unfinished one', async () => {
      await withStore({}, async ({ store }) => {
        const t0 = 1_700_000_000_000;
        const old = makeJob({ status: 'SUCCEEDED', finishedAt: t0 + 10 });
        const older = makeJob({ status: 'FAILED', finishedAt: t0 + 5 });
        const recent = makeJob({ status: 'ABORTED', finishedAt: t0 + 100 });
        const running = makeJob({ startedAt: t0 });
        for (const j of [old, older, recent, running]) await store.createJob(j);
        assert.deepEqual(await store.finishedBefore(t0 + 50, 10), [older.id, old.id]);
        assert.deepEqual(await store.finishedBefore(t0 + 50, 1), [older.id]);
        assert.deepEqual(await store.finishedBefore(t0 + 5, 10), []);
        assert.deepEqual(await store.finishedBefore(t0 + 1_000, 10), [older.id, old.id, recent.id]);
      });
    });

    test('probe resolves on a writable store; diskUsage grows with what is stored', async () => {
      await withJob({}, async (store, job) => {
        await store.probe();
        const before = await store.diskUsage();
        assert.ok(before > 0);
        await mustAppend(store, job.id, randomBytes(1 << 20));
        const after = await store.diskUsage();
        assert.ok(after - before >= 1_000_000, `usage grew by ${after - before} bytes for 1 MiB appended`);
      });
    });

    test('a finished log reads the same once packed (every page, across block ends); a running one stays appendable', async () => {
      await withStore({}, async (sut) => {
        const { store } = sut;
        const done = makeJob();
        const live = makeJob();
        await store.createJob(done);
        await store.createJob(live);
        const parts: Buffer[] = [];
        for (let i = 0; i < 120; i++) {
          // Build-like text with some incompressible bytes, about 900 KB: several packed blocks.
          const p = Buffer.concat([b(`step ${i}: compiling module ${i % 17}\n`.repeat(150)), randomBytes(1500)]);
          parts.push(p);
          await mustAppend(store, done.id, p);
        }
        await mustAppend(store, live.id, 'still running\n');
        const want = Buffer.concat(parts);
        await store.updateJobStatus(done.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: Date.now() });
        assert.equal(await store.packFinishedLogs(), 1);
        assert.equal(await store.packFinishedLogs(), 0, 'nothing left to pack');
        assert.deepEqual(await store.logInfo(done.id), { start: 0, length: want.length });
        for (const page of [1 << 20, 256 * 1024, 100_000, 4096]) {
          assert.ok((await readAll(store, done.id, 0, page)).data.equals(want), `page ${page}`);
        }
        for (const from of [0, 1, 262_143, 262_144, 262_145, 524_288 - 10, want.length - 1]) {
          const s = await store.readLog(done.id, from, 70_000);
          assert.ok(s);
          assert.equal(s.start, from);
          assert.ok(s.data.equals(want.subarray(from, from + 70_000)), `from ${from}`);
        }
        assert.equal((await store.append(done.id, b('late'))).kind, 'terminal');
        await mustAppend(store, live.id, 'more\n');
        assert.equal((await readAll(store, live.id)).data.toString(), 'still running\nmore\n');
        assert.deepEqual(await store.verify('quick'), []);
        assert.deepEqual(await store.verify('full'), []);
        // Packed logs survive a reopen.
        await store.close();
        const again = await sut.reopen();
        assert.ok((await readAll(again, done.id, 0, 300_000)).data.equals(want));
        assert.deepEqual(await again.verify('full'), []);
      });
    });

    test('a finished log trimmed by retention packs and reads from its window start', async () => {
      await withJob({ retentionChars: 1000 }, async (store, job) => {
        let all = '';
        for (let i = 0; i < 50; i++) {
          const line = `line ${i} ${'x'.repeat(40)}\n`;
          all += line;
          await mustAppend(store, job.id, line);
        }
        const before = await readAll(store, job.id);
        await store.updateJobStatus(job.id, 'RUNNING', { status: 'FAILED', finishedAt: Date.now() });
        await store.packFinishedLogs();
        const after = await readAll(store, job.id);
        assert.deepEqual(after, before);
        assert.equal(after.end, Buffer.byteLength(all));
        assert.equal(after.data.toString(), all.slice(all.length - 1000));
        assert.deepEqual(await store.verify('full'), []);
      });
    });
  });
}
