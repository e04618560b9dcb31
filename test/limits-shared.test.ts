// Limits counted across nodes through the machine's Redis: SharedCounts on its own with a clock of the
// test's, then two servers on one PostgreSQL + Redis sharing one client's request budget and stream cap.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { createUser } from '../src/auth/tokens.js';
import { SharedCounts } from '../src/limits/shared-counts.js';
import { startTestServer, TOKEN, waitFor, type TestServer } from './helpers/server.js';

const REDIS_URL = process.env.BUILDLOG_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

describe('SharedCounts', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(REDIS_URL);
  });
  after(() => redis.quit());

  /** Two nodes on a prefix of their own, with one clock the test moves. */
  function twoNodes(start = 1_700_000_000_000) {
    const prefix = `buildlog-test:${newId()}`;
    const clock = { now: start };
    const a = new SharedCounts(redis, prefix, () => clock.now);
    const b = new SharedCounts(redis, prefix, () => clock.now);
    return { a, b, clock };
  }

  test('requests counted on two nodes add up once both have synced; a new window starts from zero', async () => {
    const { a, b, clock } = twoNodes();
    for (let i = 0; i < 30; i++) a.hit('job:x', 1000);
    for (let i = 0; i < 40; i++) b.hit('job:x', 1000);
    assert.equal(a.hit('job:x', 1000).count, 31, 'before syncing, a node knows its own count only');
    await a.sync();
    await b.sync();
    assert.equal(b.hit('job:x', 1000).count, 72, 'b learned a\'s 31');
    await b.sync();
    await a.sync();
    assert.equal(a.hit('job:x', 1000).count, 73, 'a learned b\'s 41 without counting its own 31 twice');
    assert.equal(a.hit('job:y', 1000).count, 1, 'keys are apart');
    clock.now += 1000;
    assert.deepEqual(a.hit('job:x', 1000), { count: 1, msLeft: 1000 });
  });

  test('gauges sum over live nodes; a stopped node\'s and a silent node\'s stop counting', async () => {
    const { a, b, clock } = twoNodes();
    const c = new SharedCounts(redis, (a as unknown as { prefix: string }).prefix, () => clock.now);
    a.adjust('user:u', 3);
    b.adjust('user:u', 2);
    c.adjust('user:u', 4);
    await Promise.all([a.sync(), b.sync(), c.sync()]);
    await a.sync();
    assert.equal(a.gauge('user:u'), 9);
    a.adjust('user:u', -1);
    assert.equal(a.gauge('user:u'), 8, 'this node\'s own change counts at once');
    await b.stop();
    await a.sync();
    assert.equal(a.gauge('user:u'), 6, 'b stopped: its streams are gone');
    // c stops syncing without saying so (a crash): once it has been silent for 5 s it no longer counts.
    clock.now += 6000;
    await a.sync();
    assert.equal(a.gauge('user:u'), 2);
  });
});

describe('two nodes share one budget', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const servers: TestServer[] = [];
  const PER_MINUTE = 20;

  before(async () => {
    for (let i = 0; i < 2; i++) {
      servers.push(
        await startTestServer({ databaseUrl: DATABASE_URL, databaseSchema: schema, redisUrl: REDIS_URL, rateLimitPerClient: PER_MINUTE, maxStreamsPerClient: 3 }),
      );
    }
  });

  after(async () => {
    for (const s of servers) await s.stop();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('the streams one client holds open are capped across the nodes', async () => {
    const [a, b] = servers as [TestServer, TestServer];
    const created = await fetch(`${a.url}/v2/actor-builds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
    const job = ((await created.json()) as { data: { id: string } }).data.id;
    const open: AbortController[] = [];
    /** Opens a stream (kept open) and returns its status, or the error message of a refusal. */
    const stream = async (s: TestServer) => {
      const abort = new AbortController();
      const res = await fetch(`${s.url}/v2/logs/${job}?stream=1`, { signal: abort.signal });
      if (res.status === 200) open.push(abort);
      const message = res.status === 200 ? '' : ((await res.json()) as { error: { message: string } }).error.message;
      return { status: res.status, message };
    };
    try {
      assert.equal((await stream(a)).status, 200);
      assert.equal((await stream(a)).status, 200);
      assert.equal((await stream(b)).status, 200, 'three of three');
      // Each node learns the other's streams with its next sync (every 100 ms); until then a fourth may pass once.
      await waitFor(async () => {
        const res = await stream(b);
        if (res.status === 200) open.pop()!.abort();
        return res.status === 429;
      }, 5000, 'node b refusing a fourth stream');
      await waitFor(async () => {
        const res = await stream(a);
        if (res.status === 200) open.pop()!.abort();
        return res.status === 429;
      }, 5000, 'node a refusing a fourth stream');
      const refused = await stream(b);
      assert.equal(refused.status, 429);
      assert.match(refused.message, /concurrent log streams \(limit 3 per client\)/);
    } finally {
      for (const c of open) c.abort();
    }
  });

  test('a client\'s requests per minute are counted across the nodes', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      // The windows are minutes of the clock: start well inside one, so that it does not roll over mid-test.
      const intoMinute = Date.now() % 60_000;
      if (intoMinute > 40_000) await new Promise((r) => setTimeout(r, 60_000 - intoMinute + 100));
      const [a, b] = servers as [TestServer, TestServer];
      // A user of its own: only this test's requests count against its budget.
      const { user, token } = await createUser(a.store, `budget-${newId().toLowerCase()}`);
      const me = (s: TestServer) => fetch(`${s.url}/v2/users/me`, { headers: { authorization: `Bearer ${token}` } });
      const userId = user.id;
      assert.equal((await me(a)).status, 200);
      const key = `buildlog:test.${schema}:limits:count:user:${userId}@${(Math.floor(Date.now() / 60_000) + 1) * 60_000}`;
      for (let i = 1; i < 15; i++) assert.equal((await me(a)).status, 200);
      await waitFor(async () => (await redis.get(key)) === '15', 5000, 'node a synced its 15 requests');
      assert.equal((await me(b)).status, 200);
      await waitFor(async () => (await redis.get(key)) === '16', 5000, 'node b synced its first request');
      // Node b learned the total (16) with its sync: 4 more fit in the budget of 20, the next is refused.
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) statuses.push((await me(b)).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
      // And node a learns it with its next sync.
      await waitFor(async () => (await me(a)).status === 429, 5000, 'node a refusing too');
    } finally {
      await redis.quit();
    }
  });
});
