/**
 * The Store contract: everything src/store/store.ts promises, runnable unchanged against every
 * implementation (SQLite now, PostgreSQL later). A runner calls `storeContract(name, open)` from a
 * `*.test.ts` file; `open` creates a fresh, empty store in a place of its own (a temp dir, a schema,
 * a database) and must be able to open that same place again (`reopen`), so durability can be checked.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { JobRecord, JobStatus } from '../../src/core/job.js';
import { newId } from '../../src/core/ids.js';
import type { AppendResult, Store, UserRecord } from '../../src/store/store.js';
import { storeJobListContract } from './store-jobs.contract.js';
import { storeSearchContract } from './store-search.contract.js';
import { storeImportContract } from './store-import.contract.js';

export interface StoreUnderTest {
  /** A fresh, empty store. */
  store: Store;
  /**
   * Opens a new Store on the same place (same data dir, same database/schema) with the same options.
   * The test closes the previous store first. The contract may call it more than once.
   */
  reopen(): Promise<Store>;
  /** Closes every store still open from this place (close() must be idempotent) and removes the place. */
  cleanup(): Promise<void>;
}

export interface StoreOpenOptions {
  /** Characters each log keeps (the retention window). */
  retentionChars: number;
}

/** Runs a test with a fresh store and cleans up (what the contract's parts are given). */
export type WithStore = (opts: Partial<StoreOpenOptions>, fn: (s: StoreUnderTest) => Promise<void>) => Promise<void>;

export type OpenStore = (opts: StoreOpenOptions) => Promise<StoreUnderTest>;

/** Large enough that nothing is trimmed in the tests that are not about retention. */
const NO_TRIM = 50_000_000;

let counter = 0;
const uniq = (): string => `${Date.now().toString(36)}${(++counter).toString(36)}`;

export function makeUser(overrides: Partial<UserRecord> = {}): UserRecord {
  const u = uniq();
  return {
    id: newId(),
    username: `user-${u}`,
    tokenHash: `hash-${u}-${randomBytes(8).toString('hex')}`,
    proxyPassword: `proxy-${u}`,
    createdAt: 1_700_000_000_000 + counter,
    ...overrides,
  };
}

export function makeJob(overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    id: newId(),
    kind: 'build',
    userId: 'owner0000000000000',
    actId: 'actor00000000000a',
    buildId: null,
    buildNumber: '0.0.1',
    status: 'RUNNING',
    statusMessage: null,
    exitCode: null,
    origin: 'API',
    meta: { origin: 'API', nested: { list: [1, 'two', null], flag: true } },
    options: { memoryMbytes: 1024, build: 'latest' },
    startedAt: 1_700_000_000_000,
    finishedAt: null,
    ...overrides,
  };
}

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Appends and asserts it was appended at `start`. */
async function mustAppend(store: Store, jobId: string, data: Buffer | string, expectedOffset?: number): Promise<AppendResult> {
  const buf = typeof data === 'string' ? b(data) : data;
  const before = await store.logInfo(jobId);
  const r = await store.append(jobId, buf, expectedOffset);
  assert.deepEqual(r, { kind: 'appended', start: before!.length, end: before!.length + buf.length });
  return r;
}

/** The whole retained log, read in pages of `page` bytes; checks every slice is consistent. */
export async function readAll(store: Store, jobId: string, from = 0, page = 1 << 20): Promise<{ start: number; end: number; data: Buffer }> {
  const info = await store.logInfo(jobId);
  assert.ok(info, `log ${jobId} exists`);
  const parts: Buffer[] = [];
  let first: number | null = null;
  let pos = from;
  for (;;) {
    const s = await store.readLog(jobId, pos, page);
    assert.ok(s);
    assert.equal(s.data.length, s.end - s.start, 'slice data length matches its offsets');
    assert.ok(s.data.length <= page, 'slice never exceeds maxBytes');
    if (first === null) first = s.start;
    else assert.equal(s.start, pos, 'a following page starts where the previous ended');
    pos = s.end;
    if (s.end === s.start) break;
    parts.push(s.data);
  }
  assert.equal(pos, info.length, 'read up to the end');
  return { start: first!, end: pos, data: Buffer.concat(parts) };
}

const isContinuation = (byte: number): boolean => (byte & 0xc0) === 0x80;

/** Byte offset where the trailing `n` characters (UTF-8 sequence starts) of `all` begin. */
function tailStart(all: Buffer, n: number): number {
  let seen = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    if (!isContinuation(all[i]!)) {
      seen++;
      if (seen === n) return i;
    }
  }
  return 0;
}

export function storeContract(name: string, open: OpenStore): void {
  /** Runs `fn` with a fresh store and always cleans up. */
  async function withStore(opts: Partial<StoreOpenOptions>, fn: (s: StoreUnderTest) => Promise<void>): Promise<void> {
    const sut = await open({ retentionChars: NO_TRIM, ...opts });
    try {
      await fn(sut);
    } finally {
      await sut.cleanup();
    }
  }

  /** A store plus one RUNNING job. */
  async function withJob(opts: Partial<StoreOpenOptions>, fn: (store: Store, job: JobRecord, sut: StoreUnderTest) => Promise<void>): Promise<void> {
    await withStore(opts, async (sut) => {
      const job = makeJob();
      await sut.store.createJob(job);
      await fn(sut.store, job, sut);
    });
  }

  describe(name, () => {
    storeJobListContract(withStore);
    storeSearchContract(withStore);
    storeImportContract(withStore);

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
            // Once terminal, nothing more.
            assert.deepEqual(await store.append(job.id, b('third')), { kind: 'terminal', status: 'SUCCEEDED' });
            assert.deepEqual(await store.logInfo(job.id), { start: 0, length: log.end });
          }
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

    describe('retention', () => {
      test('a log keeps exactly its trailing N characters; offsets stay absolute', async () => {
        const N = 10;
        await withJob({ retentionChars: N }, async (store, job) => {
          let all = '';
          const pieces = ['abc', 'defgh', 'ij', 'k', 'lmnopqrstuvwxyz', '0', '1', '23456789', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'x'];
          for (const p of pieces) {
            await mustAppend(store, job.id, p, all.length);
            all += p;
            const start = Math.max(0, all.length - N);
            assert.deepEqual(await store.logInfo(job.id), { start, length: all.length }, `after ${JSON.stringify(p)}`);
            assert.deepEqual(await store.readLog(job.id, start, 1000), { start, end: all.length, data: b(all.slice(start)) });
          }
          const info = (await store.logInfo(job.id))!;
          // Reading from before the window starts at the window.
          assert.deepEqual(await store.readLog(job.id, 0, 1000), { start: info.start, end: info.length, data: b(all.slice(-N)) });
          assert.deepEqual(await store.readLog(job.id, info.start - 1, 3), {
            start: info.start,
            end: info.start + 3,
            data: b(all.slice(info.start, info.start + 3)),
          });
          // Inside the window, absolute offsets.
          assert.deepEqual(await store.readLog(job.id, info.length - 4, 2), {
            start: info.length - 4,
            end: info.length - 2,
            data: b(all.slice(-4, -2)),
          });
        });
      });

      test('a single append larger than the window keeps only its tail', async () => {
        const N = 100;
        await withJob({ retentionChars: N }, async (store, job) => {
          await mustAppend(store, job.id, 'head ');
          const big = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
          await mustAppend(store, job.id, big);
          const all = 'head ' + big;
          assert.deepEqual(await store.logInfo(job.id), { start: all.length - N, length: all.length });
          assert.equal((await readAll(store, job.id)).data.toString(), all.slice(-N));
        });
      });

      test('a log of exactly N characters is not trimmed; one more character trims one', async () => {
        const N = 20;
        await withJob({ retentionChars: N }, async (store, job) => {
          await mustAppend(store, job.id, 'é'.repeat(N)); // N characters, 2N bytes
          assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 2 * N });
          await mustAppend(store, job.id, 'x');
          assert.deepEqual(await store.logInfo(job.id), { start: 2, length: 2 * N + 1 });
          assert.equal((await readAll(store, job.id)).data.toString(), 'é'.repeat(N - 1) + 'x');
        });
      });

      test('multi-byte UTF-8: the cut never splits a sequence, also when one is split across appends', async () => {
        const N = 7;
        await withJob({ retentionChars: N }, async (store, job) => {
          const rocket = b('🚀'); // 4 bytes
          const e = b('é'); // 2 bytes
          const han = b('漢'); // 3 bytes
          const appends: Buffer[] = [
            b('ab'),
            e,
            rocket.subarray(0, 2),
            rocket.subarray(2), // 🚀 split 2+2
            b('c'),
            han.subarray(0, 1),
            han.subarray(1), // 漢 split 1+2
            e.subarray(0, 1),
            e.subarray(1), // é split 1+1
            Buffer.concat([rocket, rocket, rocket]),
            rocket.subarray(0, 3),
            rocket.subarray(3), // 🚀 split 3+1
            b('z'),
            Buffer.concat([han, e, b('q'), rocket.subarray(0, 1)]),
            rocket.subarray(1), // 🚀 split 1+3
            Buffer.concat([e, e, e, e, e, e, e, e, e]), // the window is all é
            b('🚀漢é!'),
          ];
          let all = Buffer.alloc(0);
          for (const [i, chunk] of appends.entries()) {
            await mustAppend(store, job.id, chunk, all.length);
            all = Buffer.concat([all, chunk]);
            const start = tailStart(all, N);
            assert.deepEqual(await store.logInfo(job.id), { start, length: all.length }, `after append ${i}`);
            const kept = await readAll(store, job.id);
            assert.equal(kept.start, start);
            assert.ok(kept.data.equals(all.subarray(start)), `retained bytes after append ${i}`);
            assert.ok(kept.data.length === 0 || !isContinuation(kept.data[0]!), 'starts on a sequence start');
            // When the log ends on a whole character, the retained text is exactly the last N characters.
            const text = all.toString('utf8');
            if (Buffer.from(text, 'utf8').equals(all)) {
              const chars = Array.from(text);
              assert.equal(kept.data.toString('utf8'), chars.slice(-N).join(''), `text after append ${i}`);
            }
          }
          const final = Array.from(all.toString('utf8'));
          assert.equal((await readAll(store, job.id)).data.toString('utf8'), final.slice(-N).join(''));
          assert.equal((await readAll(store, job.id)).data.toString('utf8'), 'ééé🚀漢é!');
        });
      });

      test('many small appends under a small window: every read is the exact tail', async () => {
        const N = 1000;
        await withJob({ retentionChars: N }, async (store, job) => {
          const alphabet = ['a', 'é', '漢', '🚀', '\n', 'Z'];
          let all = Buffer.alloc(0);
          for (let i = 0; i < 400; i++) {
            const s = Array.from({ length: 1 + (i % 17) }, (_, k) => alphabet[(i + k) % alphabet.length]).join('');
            const chunk = b(s);
            await mustAppend(store, job.id, chunk);
            all = Buffer.concat([all, chunk]);
            if (i % 50 === 49) {
              const start = tailStart(all, N);
              assert.deepEqual(await store.logInfo(job.id), { start, length: all.length });
              assert.ok((await readAll(store, job.id, 0, 333)).data.equals(all.subarray(start)));
            }
          }
          const text = Array.from(all.toString('utf8'));
          assert.equal((await readAll(store, job.id)).data.toString('utf8'), text.slice(-N).join(''));
        });
      });

      test('one append that pushes a long history of chunks out of the window at once', async () => {
        const N = 2_500_000;
        await withJob({ retentionChars: N }, async (store, job) => {
          const parts: Buffer[] = [];
          for (let i = 0; i < 75; i++) {
            const p = Buffer.alloc(33_000, 97 + (i % 26));
            parts.push(p);
            await mustAppend(store, job.id, p);
          }
          // 2.3M characters: the cut lands inside the 69th of the 75 earlier chunks.
          const big = Buffer.concat([Buffer.alloc(2_000_000, '.'), Buffer.alloc(600_000, 'é')]);
          parts.push(big);
          await mustAppend(store, job.id, big);
          const all = Buffer.concat(parts);
          const start = tailStart(all, N);
          assert.deepEqual(await store.logInfo(job.id), { start, length: all.length });
          const kept = await readAll(store, job.id, 0, 1_000_000);
          assert.equal(kept.start, start);
          assert.ok(kept.data.equals(all.subarray(start)));
          assert.equal(Array.from(kept.data.toString('utf8')).length, N);
        });
      });

      test('a retry of a chunk that (partly) fell out of the window is still `duplicate`', async () => {
        const N = 10;
        await withJob({ retentionChars: N }, async (store, job) => {
          await mustAppend(store, job.id, 'abcdefgh', 0);
          await mustAppend(store, job.id, 'ijklmnop', 8);
          assert.deepEqual(await store.logInfo(job.id), { start: 6, length: 16 });
          // Partly trimmed: the retained part matches.
          assert.deepEqual(await store.append(job.id, b('abcdefgh'), 0), { kind: 'duplicate', length: 16 });
          // Partly trimmed, the retained part differs.
          assert.deepEqual(await store.append(job.id, b('abcdefXX'), 0), { kind: 'offset-mismatch', length: 16 });
          await mustAppend(store, job.id, 'qrstuvwxyz', 16);
          // Wholly trimmed: cannot be compared, answered as a retry.
          assert.deepEqual(await store.append(job.id, b('ijklmnop'), 8), { kind: 'duplicate', length: 26 });
          assert.deepEqual(await store.logInfo(job.id), { start: 16, length: 26 });
          assert.equal((await readAll(store, job.id)).data.toString(), 'qrstuvwxyz');
        });
      });
    });

    describe('checksum', () => {
      test('length and CRC-32 of every byte ever appended: retries, heartbeats and retention change nothing, reopen keeps it', async () => {
        await withJob({ retentionChars: 20 }, async (store, job, sut) => {
          assert.deepEqual(await store.logChecksum(job.id), { length: 0, crc32: 0 });
          assert.equal(await store.logChecksum('doesNotExist00000'), null);
          const parts = [b('first line\n'), randomBytes(100), b('ünïcödé\n'), Buffer.alloc(0), b('x'.repeat(70))];
          let all = Buffer.alloc(0);
          for (const p of parts) {
            await store.append(job.id, p, all.length);
            all = Buffer.concat([all, p]);
            assert.deepEqual(await store.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
          }
          // A retry of bytes already stored is not counted twice.
          assert.equal((await store.append(job.id, parts[4]!, all.length - parts[4]!.length)).kind, 'duplicate');
          assert.ok((await store.logInfo(job.id))!.start > 0, 'retention dropped the head');
          const reopened = await sut.reopen();
          assert.deepEqual(await reopened.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
        });
      });
    });

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
  });
}
