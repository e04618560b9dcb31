// Job deadlines and waits across nodes on the machine's PostgreSQL and Redis: a graceful abort taken by a
// node that is then killed (SIGKILL) still ends, on the other nodes; the inactivity timeout of jobs seen
// by three nodes fires once per job; apify-client's waitForFinish on one node answers when the job
// finishes on another. Status changes are counted on the Redis channel the nodes share.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { ApifyClient } from 'apify-client';
import { Redis } from 'ioredis';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { RedisBus } from '../src/live/redis.js';
import { spawnServer } from './helpers/cli.js';
import { within } from './helpers/http.js';
import { startTestServer, tempDir, TOKEN, waitFor, type TestServer } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BUILDLOG_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, 'content-type': 'application/json' };
const GRACE_SECS = 2;
const INACTIVITY_SECS = 2;

/** Every message the nodes publish on their channel, as a plain Redis subscriber sees it. */
class ChannelWatch {
  readonly #statuses = new Map<string, string[]>();
  readonly #seen = new Set<string>();

  private constructor(private readonly redis: Redis) {
    redis.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
      const header = JSON.parse(message.toString('utf8', 0, message.indexOf(10))) as { t: string; j?: string; st?: string };
      if (!header.j) return;
      this.#seen.add(header.j);
      if (header.t === 'status') this.#statuses.set(header.j, [...this.statuses(header.j), header.st!]);
    });
  }

  static async open(schema: string): Promise<ChannelWatch> {
    const redis = new Redis(REDIS_URL);
    // The channel of the installation: its database and schema (src/server/backends.ts).
    await redis.subscribe(`buildlog:${new URL(DATABASE_URL).pathname.slice(1)}.${schema}:live`);
    return new ChannelWatch(redis);
  }

  /** The status events published for a job, in order. */
  statuses(jobId: string): string[] {
    return this.#statuses.get(jobId) ?? [];
  }

  until(jobId: string, status: string, timeoutMs: number): Promise<void> {
    return waitFor(() => this.statuses(jobId).includes(status), timeoutMs, `${status} of ${jobId} on the channel`);
  }

  /**
   * Resolves once everything these nodes publish for what they know now has been seen: each finishes a
   * sweep begun after this call, then publishes a marker, and Redis delivers one connection's messages in order.
   */
  async drain(nodes: TestServer[]): Promise<void> {
    const markers = await Promise.all(
      nodes.map(async (node) => {
        await node.deadlines.sweep(); // the pass under way, if any
        await node.deadlines.sweep(); // one that began after it
        const marker = newId();
        node.bus.publish({ type: 'resync', jobId: marker });
        return marker;
      }),
    );
    await waitFor(() => markers.every((m) => this.#seen.has(m)), 10_000, 'the markers of every node');
  }

  close(): Promise<unknown> {
    return this.redis.quit();
  }
}

/** A raw `stream=1` reader of a job's log on one node: what it received, and how its response ended. */
function follow(url: string, job: string) {
  let text = '';
  const done = (async () => {
    const res = await fetch(`${url}/v2/logs/${job}?stream=1&raw=1`);
    assert.equal(res.status, 200);
    for await (const chunk of res.body!) text += Buffer.from(chunk).toString('utf8');
    return 'ended';
  })();
  return { text: () => text, done };
}

async function post(url: string, path: string, body: unknown = {}): Promise<{ id: string; status: string }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: json, body: JSON.stringify(body) });
  assert.ok(res.status < 300, `POST ${path}: ${res.status}`);
  return ((await res.json()) as { data: { id: string; status: string } }).data;
}

async function append(url: string, job: string, text: string): Promise<void> {
  const res = await fetch(`${url}/v2/logs/${job}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: text });
  assert.equal(res.status, 200);
}

describe('deadlines and waits across nodes on one PostgreSQL and Redis', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const backends = { databaseUrl: DATABASE_URL, databaseSchema: schema, redisUrl: REDIS_URL };
  let watch: ChannelWatch;

  before(async () => {
    watch = await ChannelWatch.open(schema);
  });

  after(async () => {
    await watch.close();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  /** Nodes in this process (so that the test can finish their sweeps); they start one after the other. */
  async function inProcess(count: number, overrides: Parameters<typeof startTestServer>[0]): Promise<TestServer[]> {
    const nodes: TestServer[] = [];
    for (let i = 0; i < count; i++) nodes.push(await startTestServer({ ...backends, ...overrides }));
    return nodes;
  }

  test('a graceful abort taken by a node that is then killed ends ABORTED on the others, once, and their followers end', { timeout: 120_000 }, async () => {
    const dir = tempDir('buildlog-node-');
    const a = await spawnServer(
      ['--data', dir, '--database-url', DATABASE_URL, '--database-schema', schema, '--redis-url', REDIS_URL, '--graceful-abort-secs', String(GRACE_SECS)],
      { BUILDLOG_TOKEN: TOKEN },
    );
    const [b, c] = (await inProcess(2, { gracefulAbortSecs: GRACE_SECS })) as [TestServer, TestServer];
    try {
      const job = (await post(a.url, '/v2/actor-runs')).id;
      await append(c.url, job, 'shutting down\n');
      const follower = follow(b.url, job);
      await waitFor(() => follower.text() === 'shutting down\n', 10_000, 'the follower on b');

      const abortedAfter = Date.now();
      assert.equal((await post(a.url, `/v2/actor-runs/${job}/abort?gracefully=1`)).status, 'ABORTING');
      await watch.until(job, 'ABORTING', 10_000);
      await a.stop('SIGKILL');

      await watch.until(job, 'ABORTED', 30_000);
      assert.equal(await within(follower.done, 10_000, 'the follower on b to end'), 'ended');
      assert.equal(follower.text(), 'shutting down\n');
      const ended = (await b.store.getJob(job))!;
      assert.equal(ended.status, 'ABORTED');
      assert.ok(ended.finishedAt! >= abortedAfter + GRACE_SECS * 1000, 'not before the grace period was over');
      await watch.drain([b, c]);
      assert.deepEqual(watch.statuses(job), ['ABORTING', 'ABORTED'], 'one ABORTED, though both remaining nodes sweep');
    } finally {
      await a.stop('SIGKILL');
      await b.stop();
      await c.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the inactivity timeout of jobs that three nodes sweep changes each job once', { timeout: 120_000 }, async () => {
    const nodes = await inProcess(3, { inactivityTimeoutSecs: INACTIVITY_SECS, gracefulAbortSecs: 3600 });
    try {
      // Many jobs going silent together: the nodes' sweeps overlap and race for them.
      const jobs = await Promise.all(Array.from({ length: 24 }, (_, i) => post(nodes[i % 3]!.url, '/v2/actor-builds').then((j) => j.id)));
      await Promise.all(jobs.map((job, i) => append(nodes[(i + 1) % 3]!.url, job, `last words of ${job}\n`)));
      const followers = jobs.map((job, i) => follow(nodes[(i + 2) % 3]!.url, job));

      for (const job of jobs) await watch.until(job, 'TIMED-OUT', 30_000);
      for (const [i, f] of followers.entries()) {
        assert.equal(await within(f.done, 10_000, `the follower of ${jobs[i]} to end`), 'ended');
        assert.equal(f.text(), `last words of ${jobs[i]}\n`);
      }
      await watch.drain(nodes);
      for (const job of jobs) {
        assert.deepEqual(watch.statuses(job), ['TIMED-OUT'], `one status change of ${job}`);
        const record = (await nodes[0]!.store.getJob(job))!;
        assert.equal(record.status, 'TIMED-OUT');
        assert.equal(record.statusMessage, `No output or heartbeat for ${INACTIVITY_SECS} s; the producer is gone.`);
      }
    } finally {
      for (const n of nodes) await n.stop();
    }
  });

  test('apify-client waitForFinish on one node answers when the run finishes on another', { timeout: 60_000 }, async () => {
    const [b, c] = (await inProcess(2, {})) as [TestServer, TestServer];
    try {
      const job = (await post(c.url, '/v2/actor-runs')).id;
      const bus = b.bus as RedisBus;
      const before = bus.subscribedJobs;
      const waiting = new ApifyClient({ baseUrl: b.url, token: TOKEN }).run(job).get({ waitForFinish: 50 });
      // Finished once b is waiting for it.
      await waitFor(() => bus.subscribedJobs > before, 10_000, 'the wait on b');
      const res = await fetch(`${c.url}/v2/actor-runs/${job}`, { method: 'PUT', headers: json, body: '{"status":"SUCCEEDED"}' });
      assert.equal(res.status, 200);
      assert.equal((await within(waiting, 20_000, 'the wait on b to answer'))?.status, 'SUCCEEDED');
    } finally {
      await b.stop();
      await c.stop();
    }
  });
});
