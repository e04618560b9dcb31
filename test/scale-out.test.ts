// Three `buildlog serve` processes on the machine's PostgreSQL and Redis, as one installation: producers
// and followers spread over the nodes, every follower gets every byte exactly once, and when a node is
// killed (SIGKILL) its followers resume on another node with Range and lose nothing.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { spawnServer, type ServerProcess } from './helpers/cli.js';
import { tempDir, waitFor } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.BUILDLOG_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const TOKEN = 'scale-out-token-0123456789abcdef';
const auth = { authorization: `Bearer ${TOKEN}` };

/** A `stream=1` reader of a raw log: what it received so far, and whether the response ended or broke. */
interface Follower {
  node: number;
  job: string;
  bytes: Buffer[];
  received(): number;
  text(): string;
  done: Promise<'ended' | 'broken'>;
}

function follow(node: number, url: string, job: string, from = 0, prior: Buffer[] = []): Follower {
  const bytes = [...prior];
  const f: Follower = {
    node,
    job,
    bytes,
    received: () => bytes.reduce((n, b) => n + b.length, 0),
    text: () => Buffer.concat(bytes).toString('utf8'),
    done: (async () => {
      try {
        const res = await fetch(`${url}/v2/logs/${job}?stream=1&raw=1`, { headers: from ? { range: `bytes=${from}-` } : {} });
        assert.equal(res.status, from ? 206 : 200);
        assert.equal(Number(res.headers.get('x-log-offset')), from);
        for await (const chunk of res.body!) bytes.push(Buffer.from(chunk));
        return 'ended';
      } catch {
        return 'broken';
      }
    })(),
  };
  return f;
}

describe('three nodes on one PostgreSQL and Redis', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const dirs: string[] = [];
  const nodes: ServerProcess[] = [];

  after(async () => {
    await Promise.all(nodes.map((n) => n.stop('SIGKILL')));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  test('every follower on every node gets every byte once; a killed node\'s followers resume elsewhere', { timeout: 120_000 }, async () => {
    // Started together with the same token: one schema migration, one user.
    const started = await Promise.all(
      [0, 1, 2].map(() => {
        const dir = tempDir('buildlog-node-');
        dirs.push(dir);
        // Limits lifted: 80 appends and a dozen follows of one job can fall into one second on a quick run (test/limits-shared.test.ts tests the limits).
        const noLimits = ['--rate-limit-resource', '1000000', '--rate-limit-client', '100000000'];
        return spawnServer(['--data', dir, '--database-url', DATABASE_URL, '--database-schema', schema, '--redis-url', REDIS_URL, ...noLimits], { BUILDLOG_TOKEN: TOKEN });
      }),
    );
    nodes.push(...started);
    const urls = started.map((n) => n.url);

    const users = await Promise.all(urls.map(async (u) => ((await (await fetch(`${u}/v2/users/me`, { headers: auth })).json()) as { data: { id: string } }).data.id));
    assert.equal(new Set(users).size, 1, 'the three nodes bootstrapped one user for the token');

    // One job per node, each created on its node.
    const jobs = await Promise.all(
      urls.map(async (u) => {
        const res = await fetch(`${u}/v2/actor-builds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
        assert.equal(res.status, 201);
        return ((await res.json()) as { data: { id: string } }).data.id;
      }),
    );
    // Every job followed from every node, twice.
    const followers = jobs.flatMap((job) => [0, 1, 2, 0, 1, 2].map((n) => follow(n, urls[n]!, job)));

    const expected = new Map(jobs.map((j) => [j, '']));
    /** Appends `count` lines to each job, job i through node (i + round) % 3, all jobs at once. */
    async function produce(round: number, count: number, alive: number[]) {
      await Promise.all(
        jobs.map(async (job, i) => {
          for (let k = 0; k < count; k++) {
            const node = alive[(i + round + k) % alive.length]!;
            const line = `job ${i} round ${round} line ${k} via node ${node} ${'·'.repeat(k % 7)}\n`;
            const offset = Buffer.byteLength(expected.get(job)!);
            const res = await fetch(`${urls[node]}/v2/logs/${job}/chunks`, {
              method: 'POST',
              headers: { ...auth, 'content-type': 'text/plain', 'x-log-offset': String(offset) },
              body: line,
            });
            assert.ok(res.status < 300, `append via node ${node}: ${res.status} ${await res.text()}`);
            expected.set(job, expected.get(job)! + line);
          }
        }),
      );
    }

    await produce(0, 40, [0, 1, 2]);
    await waitFor(() => followers.every((f) => f.text() === expected.get(f.job)), 30_000, 'every follower has the first half');

    // Node 2 dies; its followers break and resume on node 0 where they stopped.
    nodes[2]!.child.kill('SIGKILL');
    const resumed: Follower[] = [];
    for (const f of followers) {
      if (f.node !== 2) continue;
      assert.equal(await f.done, 'broken');
      resumed.push(follow(0, urls[0]!, f.job, f.received(), f.bytes));
    }
    const live = [...followers.filter((f) => f.node !== 2), ...resumed];

    await produce(1, 40, [0, 1]);
    for (const [i, job] of jobs.entries()) {
      const res = await fetch(`${urls[i % 2]}/v2/actor-builds/${job}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{"status":"SUCCEEDED"}' });
      assert.equal(res.status, 200);
    }
    for (const f of live) {
      assert.equal(await f.done, 'ended', `follower of ${f.job} on node ${f.node} ended with the job`);
      assert.equal(f.text(), expected.get(f.job), `follower of ${f.job} on node ${f.node} got every byte exactly once`);
    }
  });
});
