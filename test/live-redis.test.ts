// The Redis LiveBus against the machine's Redis (127.0.0.1:6379, BUILDLOG_TEST_REDIS_URL to change it):
// the LiveBus contract with a second node as peer, then what pub/sub cannot promise by itself (large
// appends, lost connections) and how followers heal from it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { newId } from '../src/core/ids.js';
import { JobService } from '../src/core/service.js';
import type { LiveEvent } from '../src/live/bus.js';
import { LogFollower } from '../src/live/follower.js';
import { INLINE_DATA_MAX, RedisBus } from '../src/live/redis.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { UserRecord } from '../src/store/store.js';
import { liveBusContract } from './contracts/live.contract.js';
import { waitFor } from './helpers/server.js';

const REDIS_URL = process.env.BUILDLOG_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Two nodes on a channel of their own, so that concurrent test runs on the same Redis do not meet. */
async function twoNodes(): Promise<{ a: RedisBus; b: RedisBus; close: () => Promise<void> }> {
  const channel = `buildlog-test:${newId()}`;
  const a = await RedisBus.open({ url: REDIS_URL, channel });
  const b = await RedisBus.open({ url: REDIS_URL, channel });
  return { a, b, close: async () => void (await Promise.all([a.close(), b.close()])) };
}

liveBusContract('RedisBus', async () => {
  const { a, b, close } = await twoNodes();
  return { bus: a, peer: b, cleanup: close };
});

describe('RedisBus specifics', () => {
  let admin: Redis;
  before(() => {
    admin = new Redis(REDIS_URL);
  });
  after(() => admin.quit());

  /** Cuts one of a node's connections the way a Redis restart or a network failure would. */
  async function kill(bus: RedisBus, role: 'pub' | 'sub'): Promise<void> {
    const list = (await admin.client('LIST')) as string;
    const line = list.split('\n').find((l) => l.includes(` name=buildlog-${bus.node}-${role} `));
    assert.ok(line, `connection buildlog-${bus.node}-${role} in CLIENT LIST`);
    const id = /(?:^| )id=(\d+)/.exec(line)![1]!;
    assert.equal(await admin.client('KILL', 'ID', id), 1);
  }

  test('an append larger than the inline limit reaches other nodes without its bytes; smaller ones with them', async () => {
    const { a, b, close } = await twoNodes();
    try {
      const job = newId();
      const got: LiveEvent[] = [];
      b.subscribe(job, (e) => void got.push(e));
      const big = Buffer.alloc(INLINE_DATA_MAX + 1, 'x');
      const small = Buffer.alloc(INLINE_DATA_MAX, 'y');
      a.publish({ type: 'append', jobId: job, start: 0, end: big.length, data: big });
      a.publish({ type: 'append', jobId: job, start: big.length, end: big.length + small.length, data: small });
      await waitFor(() => got.length === 2, 5000, 'both appends');
      assert.deepEqual(got[0], { type: 'append', jobId: job, start: 0, end: big.length });
      const second = got[1]!;
      assert.equal(second.type, 'append');
      assert.ok(second.type === 'append' && second.data?.equals(small));
    } finally {
      await close();
    }
  });

  test('a node whose subscription broke tells each job it follows to resync, once it is back', async () => {
    const { a, b, close } = await twoNodes();
    try {
      const followed = [newId(), newId()];
      const got: LiveEvent[] = [];
      for (const job of followed) b.subscribe(job, (e) => void got.push(e));
      await kill(b, 'sub');
      await waitFor(() => got.length === 2, 10_000, 'resync events');
      assert.deepEqual(
        got.map((e) => e.type + ':' + e.jobId).sort(),
        followed.map((j) => `resync:${j}`).sort(),
      );
      // And the subscription works again.
      a.publish({ type: 'status', jobId: followed[0]!, status: 'SUCCEEDED' });
      await waitFor(() => got.length === 3, 5000, 'delivery after the reconnect');
      assert.deepEqual(got[2], { type: 'status', jobId: followed[0], status: 'SUCCEEDED' });
    } finally {
      await close();
    }
  });

  test('a node whose publishing connection broke asks the other nodes to resync, once it is back', async () => {
    const { a, b, close } = await twoNodes();
    try {
      const job = newId();
      const got: LiveEvent[] = [];
      b.subscribe(job, (e) => void got.push(e));
      await kill(a, 'pub');
      await waitFor(() => got.length === 1, 10_000, 'a resync from the other node');
      assert.deepEqual(got[0], { type: 'resync', jobId: job });
      a.publish({ type: 'status', jobId: job, status: 'FAILED' });
      await waitFor(() => got.length === 2, 5000, 'delivery after the reconnect');
    } finally {
      await close();
    }
  });

  test('a follower on another node whose events were lost while its bus was cut still gets every byte and ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildlog-redis-'));
    const store = new SqliteStore({ dataDir: dir, retentionChars: 50_000_000 });
    const { a, b, close } = await twoNodes();
    const producer = new JobService(store, a);
    try {
      const user: UserRecord = { id: 'user0000000000001', username: 'tester', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
      await store.createUser(user);
      const job = await producer.create({ kind: 'build', user });
      await producer.append(job, Buffer.from('before\n'));
      const follower = new LogFollower({ store, bus: b, jobId: job.id, from: 0, follow: true });
      const chunks: Buffer[] = [];
      follower.on('data', (c: Buffer) => chunks.push(c));
      const ended = new Promise((resolve, reject) => follower.on('end', resolve).on('error', reject));
      await waitFor(() => Buffer.concat(chunks).toString() === 'before\n', 5000, 'the stored bytes');
      // Written with the events going nowhere (as if node a's publishes were lost), then the follower's
      // own subscription breaks and comes back.
      await store.append(job.id, Buffer.from('lost 1\nlost 2\n'));
      await store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: Date.now() });
      await kill(b, 'sub');
      await ended;
      assert.equal(Buffer.concat(chunks).toString(), 'before\nlost 1\nlost 2\n');
    } finally {
      producer.close();
      await close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('waitForFinish on another node answers after a resync shows the job finished', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildlog-redis-'));
    const store = new SqliteStore({ dataDir: dir, retentionChars: 50_000_000 });
    const { b, close } = await twoNodes();
    const waiter = new JobService(store, b);
    try {
      const user: UserRecord = { id: 'user0000000000001', username: 'tester', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
      await store.createUser(user);
      const job = await waiter.create({ kind: 'run', user });
      const waiting = waiter.waitForFinish(job, 60);
      await waitFor(() => b.subscribedJobs === 1, 5000, 'the waiter subscribed');
      // The waiter's own first look at the job was queued before this one (the SQLite store answers in
      // order): it saw RUNNING. Then the job finishes without an event, so only the resync can end the wait.
      assert.equal((await store.getJob(job.id))!.status, 'RUNNING');
      await store.updateJobStatus(job.id, 'RUNNING', { status: 'FAILED', finishedAt: Date.now() });
      await kill(b, 'sub');
      assert.equal((await waiting).status, 'FAILED');
    } finally {
      waiter.close();
      await close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('open fails with the connection error when Redis is not there', async () => {
    await assert.rejects(RedisBus.open({ url: 'redis://:hunter2secret@127.0.0.1:1' }), (err: Error) => {
      assert.match(err.message, /^Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1 is not usable: .*ECONNREFUSED/);
      assert.doesNotMatch(err.message, /hunter2/);
      return true;
    });
  });
});
