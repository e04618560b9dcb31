// /healthz and /readyz, with the store made unwritable for real (a full 2 MB tmpfs, as the storage
// reliability tests do) and back.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { rmSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { rawRequest } from './helpers/http.js';
import { append, createJob, startTestServer, tempDir, waitFor, type TestServer } from './helpers/server.js';
import { fillDisk } from './helpers/disk.js';

const servers: TestServer[] = [];
const mounts: string[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  for (const m of mounts) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function envelope(res: Response): Promise<{ type: string; message: string }> {
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  return ((await res.json()) as { error: { type: string; message: string } }).error;
}

describe('health and readiness', () => {
  test('/healthz and /readyz answer 200 with JSON; other methods are 405; HEAD works', async () => {
    const server = await startTestServer();
    servers.push(server);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { data: { status: 'ok' } });
    const ready = await fetch(`${server.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.deepEqual(await ready.json(), { data: { status: 'ok', checks: { store: 'ok' } } });
    const post = await fetch(`${server.url}/readyz`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal((await envelope(post)).type, 'method-not-allowed');
    const head = await rawRequest(server, 'HEAD', '/healthz');
    assert.equal(head.status, 200);
    assert.equal(head.body.length, 0);
  });

  const mountpoint = tempDir('buildlog-ready-');
  dirs.push(mountpoint);
  let mounted = false;
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountpoint], { stdio: 'ignore' });
    mounts.push(mountpoint);
    mounted = true;
  } catch {
    // Not root: the test below is skipped and says why.
  }

  test('readiness turns 503 naming the store while its disk is full, and 200 again once there is room', { skip: mounted ? false : 'mounting a tmpfs needs root', timeout: 60_000 }, async () => {
    const server = await startTestServer({ dataDir: join(mountpoint, 'data'), rateLimitPerResource: 1_000_000 });
    servers.push(server);
    const id = await createJob(server);
    assert.equal((await append(server, id, 'before the disk filled\n')).status, 200);
    assert.equal((await fetch(`${server.url}/readyz`)).status, 200);

    const filler = join(mountpoint, 'filler');
    fillDisk(filler);

    const down = await fetch(`${server.url}/readyz`);
    assert.equal(down.status, 503);
    assert.match(down.headers.get('retry-after') ?? '', /^\d+$/);
    const error = await envelope(down);
    assert.equal(error.type, 'service-unavailable');
    assert.match(error.message, /^Not ready: store: .*disk is full/);
    // Liveness is not readiness: the process still answers.
    assert.equal((await fetch(`${server.url}/healthz`)).status, 200);
    // Reads go on meanwhile.
    assert.equal(await (await fetch(`${server.url}/v2/logs/${id}`)).text(), 'before the disk filled\n');

    unlinkSync(filler);
    const up = await fetch(`${server.url}/readyz`);
    assert.equal(up.status, 200, await up.clone().text());
    assert.equal((await append(server, id, 'after\n')).status, 200);
  });

  test('with PostgreSQL and Redis, readiness checks both: 503 naming the live bus while Redis does not answer, 200 once it does', { timeout: 60_000 }, async () => {
    const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
    // A Redis of this test's own, so that stopping it disturbs nothing else on the machine.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as { port: number };
        probe.close(() => resolve(port));
      });
    });
    const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    const schema = `buildlog_test_${newId().toLowerCase()}`;
    try {
      await waitFor(() => {
        try {
          return execFileSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' }).trim() === 'PONG';
        } catch {
          return false;
        }
      }, 10_000, 'the test Redis to start');
      const server = await startTestServer({ databaseUrl: DATABASE_URL, databaseSchema: schema, redisUrl: `redis://127.0.0.1:${port}` });
      servers.push(server);
      const ready = await fetch(`${server.url}/readyz`);
      assert.equal(ready.status, 200, await ready.clone().text());
      assert.deepEqual(await ready.json(), { data: { status: 'ok', checks: { store: 'ok', 'live bus': 'ok' } } });

      // A Redis that stops answering (SIGSTOP: its connections stay open, nothing comes back).
      redis.kill('SIGSTOP');
      const down = await fetch(`${server.url}/readyz`);
      assert.equal(down.status, 503);
      const error = await envelope(down);
      assert.equal(error.type, 'service-unavailable');
      assert.equal(error.message, 'Not ready: live bus: no answer within 1 s');
      assert.equal((await fetch(`${server.url}/healthz`)).status, 200);

      redis.kill('SIGCONT');
      await waitFor(async () => (await fetch(`${server.url}/readyz`)).status === 200, 10_000, 'readiness once Redis answers again');
      await server.close();
      servers.splice(servers.indexOf(server), 1);
    } finally {
      redis.kill('SIGCONT');
      redis.kill('SIGKILL');
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    }
  });
});
