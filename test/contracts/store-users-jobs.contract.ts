/**
 * Store contract, part: users, jobs and their status changes, activity (what the inactivity timeout
 * looks at) and usage (quotas). Called from storeContract, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { JobRecord, JobStatus } from '../../src/core/job.js';
import { makeJob, makeUser, type WithJob, type WithStore } from './store-harness.js';

export function storeUsersAndJobsContract(withStore: WithStore, withJob: WithJob): void {
  describe('users', () => {
    test('a new store has no users; lookups of unknown users are null', async () => {
      await withStore({}, async ({ store }) => {
        assert.equal(await store.countUsers(), 0);
        assert.equal(await store.userById('nobody'), null);
        assert.equal(await store.userByName('nobody'), null);
        assert.equal(await store.userByTokenHash('nohash'), null);
      });
    });

    test('created users are found by token hash, id and name, and counted', async () => {
      await withStore({}, async ({ store }) => {
        const alice = makeUser({ username: 'alice' });
        const bob = makeUser({ username: 'bob' });
        await store.createUser(alice);
        assert.equal(await store.countUsers(), 1);
        await store.createUser(bob);
        assert.equal(await store.countUsers(), 2);
        assert.deepEqual(await store.userByTokenHash(alice.tokenHash), alice);
        assert.deepEqual(await store.userByTokenHash(bob.tokenHash), bob);
        assert.deepEqual(await store.userById(alice.id), alice);
        assert.deepEqual(await store.userById(bob.id), bob);
        assert.deepEqual(await store.userByName('alice'), alice);
        assert.deepEqual(await store.userByName('bob'), bob);
        // Exact matches only.
        assert.equal(await store.userByName('ALICE'), null);
        assert.equal(await store.userByName('alic'), null);
        assert.equal(await store.userByTokenHash(alice.tokenHash.slice(0, -1)), null);
      });
    });

    test('a second user with the same username is rejected and not stored', async () => {
      await withStore({}, async ({ store }) => {
        const first = makeUser({ username: 'taken' });
        await store.createUser(first);
        const second = makeUser({ username: 'taken' });
        await assert.rejects(store.createUser(second));
        assert.equal(await store.countUsers(), 1);
        assert.deepEqual(await store.userByName('taken'), first);
        assert.equal(await store.userById(second.id), null);
        assert.equal(await store.userByTokenHash(second.tokenHash), null);
      });
    });
  });

  describe('jobs', () => {
    test('createJob/getJob round-trip every field; unknown id is null', async () => {
      await withStore({}, async ({ store }) => {
        const build = makeJob({ kind: 'build', buildNumber: '1.2.3' });
        const run = makeJob({
          kind: 'run',
          buildId: build.id,
          buildNumber: null,
          status: 'SUCCEEDED',
          statusMessage: 'done ✔ «ok»',
          exitCode: 0,
          origin: 'CLI',
          meta: {},
          options: { timeoutSecs: 3600, emoji: '🚀' },
          startedAt: 1_700_000_000_123,
          finishedAt: 1_700_000_009_876,
        });
        await store.createJob(build);
        await store.createJob(run);
        assert.deepEqual(await store.getJob(build.id), build);
        assert.deepEqual(await store.getJob(run.id), run);
        assert.equal(await store.getJob('doesNotExist00000'), null);
      });
    });

    test('a new job has an empty log', async () => {
      await withJob({}, async (store, job) => {
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 0 });
        const s = await store.readLog(job.id, 0, 100);
        assert.ok(s);
        assert.equal(s.start, 0);
        assert.equal(s.end, 0);
        assert.equal(s.data.length, 0);
        assert.equal(await store.logInfo('doesNotExist00000'), null);
        assert.equal(await store.readLog('doesNotExist00000', 0, 100), null);
      });
    });

    test('updateJobStatus applies the patch only while the status is `from`', async () => {
      await withJob({}, async (store, job) => {
        // Wrong `from`: nothing changes.
        assert.equal(await store.updateJobStatus(job.id, 'READY', { status: 'FAILED', exitCode: 9 }), null);
        assert.deepEqual(await store.getJob(job.id), job);

        const aborting = await store.updateJobStatus(job.id, 'RUNNING', { status: 'ABORTING', statusMessage: 'stopping' });
        const expected1: JobRecord = { ...job, status: 'ABORTING', statusMessage: 'stopping' };
        assert.deepEqual(aborting, expected1);
        assert.deepEqual(await store.getJob(job.id), expected1);

        // The old `from` no longer matches: a lost race.
        assert.equal(await store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED' }), null);
        assert.deepEqual(await store.getJob(job.id), expected1);

        const aborted = await store.updateJobStatus(job.id, 'ABORTING', {
          status: 'ABORTED',
          exitCode: 137,
          finishedAt: 1_700_000_050_000,
        });
        const expected2: JobRecord = { ...expected1, status: 'ABORTED', exitCode: 137, finishedAt: 1_700_000_050_000 };
        assert.deepEqual(aborted, expected2);
        assert.deepEqual(await store.getJob(job.id), expected2);

        assert.equal(await store.updateJobStatus('doesNotExist00000', 'RUNNING', { status: 'FAILED' }), null);
      });
    });

    test('updateJobStatus leaves fields whose patch value is undefined unchanged; null clears them', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob({ status: 'RUNNING', statusMessage: 'compiling', exitCode: null, finishedAt: null });
        await store.createJob(job);
        const t1 = await store.updateJobStatus(job.id, 'RUNNING', {
          status: 'TIMING-OUT',
          statusMessage: undefined,
          exitCode: undefined,
          finishedAt: undefined,
        });
        assert.deepEqual(t1, { ...job, status: 'TIMING-OUT' });

        const t2 = await store.updateJobStatus(job.id, 'TIMING-OUT', {
          status: 'TIMED-OUT',
          statusMessage: null,
          exitCode: 124,
          finishedAt: 1_700_000_100_000,
        });
        assert.deepEqual(t2, { ...job, status: 'TIMED-OUT', statusMessage: null, exitCode: 124, finishedAt: 1_700_000_100_000 });

        // Same status as `from` and target, only a message: allowed by the store (the service decides the lifecycle).
        const t3 = await store.updateJobStatus(job.id, 'TIMED-OUT', { status: 'TIMED-OUT', statusMessage: 'late' });
        assert.deepEqual(t3, { ...t2!, statusMessage: 'late' });
        assert.deepEqual(await store.getJob(job.id), t3);
      });
    });

    test('concurrent compare-and-set: exactly one of several racing updates from the same status wins', async () => {
      await withJob({}, async (store, job) => {
        const targets: JobStatus[] = ['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED-OUT', 'ABORTING'];
        const results = await Promise.all(targets.map((status) => store.updateJobStatus(job.id, 'RUNNING', { status })));
        const winners = results.filter((r) => r !== null);
        assert.equal(winners.length, 1);
        const final = await store.getJob(job.id);
        assert.deepEqual(final, winners[0]);
        assert.notEqual(final!.status, 'RUNNING');
      });
    });

    test('latestJob returns the newest job of an actor by kind, optionally of one user', async () => {
      await withStore({}, async ({ store }) => {
        const A = 'actorAAAAAAAAAAAA';
        const B = 'actorBBBBBBBBBBBB';
        const u1 = 'user1111111111111';
        const u2 = 'user2222222222222';
        const jobs = {
          b1: makeJob({ actId: A, kind: 'build', userId: u1, startedAt: 1_000 }),
          b3: makeJob({ actId: A, kind: 'build', userId: u2, startedAt: 3_000 }),
          b2: makeJob({ actId: A, kind: 'build', userId: u1, startedAt: 2_000 }),
          r1: makeJob({ actId: A, kind: 'run', userId: u1, startedAt: 1_500 }),
          r0: makeJob({ actId: A, kind: 'run', userId: u2, startedAt: 500 }),
          other: makeJob({ actId: B, kind: 'build', userId: u1, startedAt: 9_000 }),
        };
        for (const j of Object.values(jobs)) await store.createJob(j);

        assert.deepEqual(await store.latestJob(A, 'build'), jobs.b3);
        assert.deepEqual(await store.latestJob(A, 'run'), jobs.r1);
        assert.deepEqual(await store.latestJob(A, 'build', u1), jobs.b2);
        assert.deepEqual(await store.latestJob(A, 'build', u2), jobs.b3);
        assert.deepEqual(await store.latestJob(A, 'run', u2), jobs.r0);
        assert.deepEqual(await store.latestJob(B, 'build'), jobs.other);
        assert.equal(await store.latestJob(B, 'run'), null);
        assert.equal(await store.latestJob(B, 'build', u2), null);
        assert.equal(await store.latestJob('actorCCCCCCCCCCCC', 'build'), null);
      });
    });
  });

  describe('activity', () => {
    test('staleJobs lists unfinished jobs silent since a time; appends, heartbeats and status changes count as activity', async () => {
      await withStore({}, async ({ store }) => {
        const t0 = Date.now() - 60_000;
        const quiet = makeJob({ startedAt: t0 });
        const talking = makeJob({ startedAt: t0 });
        const beating = makeJob({ startedAt: t0 });
        const moved = makeJob({ startedAt: t0, status: 'READY' });
        const done = makeJob({ startedAt: t0, status: 'SUCCEEDED', finishedAt: t0 });
        for (const j of [quiet, talking, beating, moved, done]) await store.createJob(j);
        const cutoff = Date.now() - 1000;
        assert.deepEqual(
          (await store.staleJobs(cutoff, 100)).map((j) => j.id).sort(),
          [quiet.id, talking.id, beating.id, moved.id].sort(),
          'every unfinished job created before the cutoff, no terminal one',
        );
        await store.append(talking.id, Buffer.from('output'));
        await store.append(beating.id, Buffer.alloc(0));
        await store.updateJobStatus(moved.id, 'READY', { status: 'RUNNING' });
        assert.deepEqual((await store.staleJobs(cutoff, 100)).map((j) => j.id), [quiet.id]);
        assert.equal((await store.staleJobs(t0 - 1, 100)).length, 0, 'nothing is older than its start');
        assert.equal((await store.logInfo(beating.id))!.length, 0, 'a heartbeat adds no bytes');
      });
    });
  });

  describe('usage', () => {
    test('userUsage counts a user\'s jobs and the log bytes appended to them', async () => {
      await withStore({}, async ({ store }) => {
        const mine = makeJob({ userId: 'userUsage00000001' });
        const also = makeJob({ userId: 'userUsage00000001' });
        const theirs = makeJob({ userId: 'userUsage00000002' });
        for (const j of [mine, also, theirs]) await store.createJob(j);
        await store.append(mine.id, Buffer.from('12345'));
        await store.append(also.id, Buffer.from('678'));
        await store.append(theirs.id, Buffer.from('x'.repeat(100)));
        assert.deepEqual(await store.userUsage('userUsage00000001'), { jobs: 2, bytes: 8 });
        assert.deepEqual(await store.userUsage('userUsage00000002'), { jobs: 1, bytes: 100 });
        assert.deepEqual(await store.userUsage('nobody00000000000'), { jobs: 0, bytes: 0 });
      });
    });
  });
}
