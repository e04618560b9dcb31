/**
 * Store contract, part two: finding and removing jobs (listJobs, buildNumbers, deleteJob, abortingSince). Called from
 * storeContract with its `withStore`, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRecord } from '../../src/core/job.js';
import type { JobListQuery } from '../../src/store/store.js';
import { makeJob, type StoreUnderTest, type WithStore } from './store.contract.js';

const U1 = 'user1111111111111';
const U2 = 'user2222222222222';
const ids = (jobs: JobRecord[]) => jobs.map((j) => j.id);

export function storeJobListContract(withStore: WithStore): void {
  describe('job lists', () => {
    /** Ten builds and five runs of U1 over two actors, plus jobs of U2 that must never show. */
    async function seed(sut: StoreUnderTest) {
      const builds: JobRecord[] = [];
      const runs: JobRecord[] = [];
      for (let i = 0; i < 10; i++) {
        builds.push(makeJob({ userId: U1, kind: 'build', actId: i % 2 ? 'odd' : 'even', startedAt: 1_000 + i * 10, buildNumber: `0.${i % 3}.${i}` }));
      }
      for (let i = 0; i < 5; i++) {
        runs.push(makeJob({ userId: U1, kind: 'run', actId: 'odd', startedAt: 1_005 + i * 10, status: i % 2 ? 'SUCCEEDED' : 'FAILED' }));
      }
      // Equal start times: the order between them is still fixed (by id).
      builds.push(makeJob({ userId: U1, kind: 'build', actId: 'even', startedAt: 1_000 }));
      builds.sort((x, y) => x.startedAt - y.startedAt || (x.id < y.id ? -1 : 1));
      const foreign = [makeJob({ userId: U2, kind: 'build', actId: 'even' }), makeJob({ userId: U2, kind: 'run', actId: 'odd' })];
      // Inserted out of order: the store orders, not the insertion.
      for (const j of [...builds].reverse()) await sut.store.createJob(j);
      for (const j of [...runs, ...foreign]) await sut.store.createJob(j);
      return { builds, runs };
    }

    const q = (over: Partial<JobListQuery>): JobListQuery => ({ userId: U1, kind: 'build', offset: 0, limit: 1000, desc: false, ...over });

    test('a user\'s jobs of one kind, ascending by startedAt then id, with the total', async () => {
      await withStore({}, async (sut) => {
        const { builds, runs } = await seed(sut);
        const all = await sut.store.listJobs(q({}));
        assert.equal(all.total, 11);
        assert.deepEqual(ids(all.items), ids(builds));
        assert.deepEqual(all.items[2], builds[2], 'items are whole job records');
        const r = await sut.store.listJobs(q({ kind: 'run' }));
        assert.deepEqual(ids(r.items), ids(runs));
        assert.deepEqual(await sut.store.listJobs(q({ userId: 'nobody00000000000' })), { total: 0, items: [] });
      });
    });

    test('offset, limit and desc page through the same order', async () => {
      await withStore({}, async (sut) => {
        const { builds } = await seed(sut);
        const page = await sut.store.listJobs(q({ offset: 3, limit: 4 }));
        assert.equal(page.total, 11);
        assert.deepEqual(ids(page.items), ids(builds.slice(3, 7)));
        const desc = await sut.store.listJobs(q({ desc: true, offset: 1, limit: 3 }));
        assert.deepEqual(ids(desc.items), ids([...builds].reverse().slice(1, 4)));
        assert.deepEqual((await sut.store.listJobs(q({ offset: 11 }))).items, []);
        // Paging ascending while new jobs start: a later job lands after every page already read.
        const first = await sut.store.listJobs(q({ limit: 5 }));
        await sut.store.createJob(makeJob({ userId: U1, kind: 'build', actId: 'odd', startedAt: 99_999 }));
        const second = await sut.store.listJobs(q({ offset: 5, limit: 5 }));
        assert.deepEqual([...ids(first.items), ...ids(second.items)], ids(builds.slice(0, 10)));
        assert.equal(second.total, 12);
      });
    });

    test('filters by actor and by a set of statuses', async () => {
      await withStore({}, async (sut) => {
        const { builds, runs } = await seed(sut);
        const even = await sut.store.listJobs(q({ actId: 'even' }));
        assert.deepEqual(ids(even.items), ids(builds.filter((b) => b.actId === 'even')));
        assert.equal(even.total, 6);
        const failed = await sut.store.listJobs(q({ kind: 'run', statuses: ['FAILED'] }));
        assert.deepEqual(ids(failed.items), ids(runs.filter((r) => r.status === 'FAILED')));
        const both = await sut.store.listJobs(q({ kind: 'run', actId: 'odd', statuses: ['FAILED', 'SUCCEEDED'], desc: true, limit: 1 }));
        assert.deepEqual(ids(both.items), [runs[4]!.id]);
        assert.equal(both.total, 5);
        assert.equal((await sut.store.listJobs(q({ kind: 'run', statuses: ['ABORTED'] }))).total, 0);
        assert.equal((await sut.store.listJobs(q({ actId: 'none' }))).total, 0);
        // A status change moves a job between filters.
        await sut.store.createJob(makeJob({ userId: U1, kind: 'run', actId: 'odd', status: 'RUNNING', id: 'live0000000000000' }));
        await sut.store.updateJobStatus('live0000000000000', 'RUNNING', { status: 'ABORTED', finishedAt: 5 });
        assert.deepEqual(ids((await sut.store.listJobs(q({ kind: 'run', statuses: ['ABORTED'] }))).items), ['live0000000000000']);
      });
    });

    test('buildNumbers: the distinct build numbers of a user\'s builds of one actor', async () => {
      await withStore({}, async (sut) => {
        await seed(sut);
        await sut.store.createJob(makeJob({ userId: U1, kind: 'build', actId: 'odd', buildNumber: '0.1.1' }));
        await sut.store.createJob(makeJob({ userId: U1, kind: 'build', actId: 'odd', buildNumber: null }));
        await sut.store.createJob(makeJob({ userId: U2, kind: 'build', actId: 'odd', buildNumber: '9.9.9' }));
        assert.deepEqual(await sut.store.buildNumbers(U1, 'odd'), ['0.0.3', '0.0.9', '0.1.1', '0.1.7', '0.2.5']);
        assert.deepEqual(await sut.store.buildNumbers(U2, 'none'), []);
      });
    });

    test('deleteJob removes the job and its log; appends to it are not-found; others stay', async () => {
      await withStore({}, async (sut) => {
        const { store } = sut;
        const a = makeJob({ userId: U1 });
        const b = makeJob({ userId: U1 });
        await store.createJob(a);
        await store.createJob(b);
        await store.append(a.id, Buffer.from('x'.repeat(300_000)));
        await store.append(b.id, Buffer.from('keep'));
        assert.equal(await store.deleteJob(a.id), true);
        assert.equal(await store.getJob(a.id), null);
        assert.equal(await store.logInfo(a.id), null);
        assert.equal(await store.readLog(a.id, 0, 100), null);
        assert.deepEqual(await store.append(a.id, Buffer.from('late')), { kind: 'not-found' });
        assert.equal(await store.deleteJob(a.id), false, 'a second delete finds nothing');
        assert.equal((await store.listJobs(q({}))).total, 1);
        assert.equal((await store.readLog(b.id, 0, 100))!.data.toString(), 'keep');
        await store.close();
        const reopened = await sut.reopen();
        assert.equal(await reopened.getJob(a.id), null, 'the delete is durable');
        assert.ok(await reopened.getJob(b.id));
      });
    });
  });

  describe('graceful aborts', () => {
    /** Resolves once the clock has passed `t` (the store stamps changes with it). */
    const after = async (t: number) => {
      while (Date.now() <= t) await new Promise((r) => setTimeout(r, 1));
    };

    test('abortingSince: ABORTING jobs by when they became ABORTING; appends, messages and other statuses do not count', async () => {
      await withStore({}, async (sut) => {
        const { store } = sut;
        const first = makeJob({ userId: U1, startedAt: Date.now() - 60_000 });
        const second = makeJob({ userId: U1, startedAt: Date.now() - 60_000 });
        const running = makeJob({ userId: U1, startedAt: Date.now() - 60_000 });
        const done = makeJob({ userId: U1, startedAt: Date.now() - 60_000 });
        for (const j of [first, second, running, done]) await store.createJob(j);
        assert.deepEqual(await store.abortingSince(Date.now() + 1, 10), [], 'nothing is ABORTING yet, however old');

        await store.updateJobStatus(first.id, 'RUNNING', { status: 'ABORTING' });
        const t1 = Date.now();
        await after(t1);
        await store.updateJobStatus(second.id, 'RUNNING', { status: 'ABORTING' });
        await store.updateJobStatus(done.id, 'RUNNING', { status: 'ABORTING' });
        await store.updateJobStatus(done.id, 'ABORTING', { status: 'ABORTED', finishedAt: Date.now() });
        const t2 = Date.now();
        await after(t2);
        // Activity after the abort: output, a heartbeat, a new message. None of it restarts the grace period.
        await store.append(first.id, Buffer.from('still shutting down\n'));
        await store.append(second.id, Buffer.alloc(0));
        assert.ok(await store.updateJobStatus(second.id, 'ABORTING', { status: 'ABORTING', statusMessage: 'Stopping' }));

        assert.deepEqual(ids(await store.abortingSince(t1 + 1, 10)), [first.id]);
        assert.deepEqual(ids(await store.abortingSince(t2 + 1, 10)), [first.id, second.id], 'oldest abort first');
        assert.deepEqual(ids(await store.abortingSince(t2 + 1, 1)), [first.id], 'at most `limit`');
        const [found] = await store.abortingSince(t1 + 1, 10);
        assert.deepEqual(found, await store.getJob(first.id), 'whole job records');
        assert.deepEqual(ids(await store.staleJobs(t1 + 1, 10)), [running.id], 'for inactivity, the append and the heartbeat did count');

        await store.close();
        const reopened = await sut.reopen();
        assert.deepEqual(ids(await reopened.abortingSince(t2 + 1, 10)), [first.id, second.id], 'the time of the abort is durable');
      });
    });
  });
}
