// What the README promises that no other test exercised (issue 16): each test fails without the behaviour.
import { after, before, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect } from 'node:net';
import { ApifyClient } from 'apify-client';
import Database from 'better-sqlite3';
import { JobService } from '../src/core/service.js';
import { MemoryBus } from '../src/live/memory.js';
import { startServer } from '../src/server/app.js';
import { resolveConfig } from '../src/server/config.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { UserRecord } from '../src/store/store.js';
import { spawnServer } from './helpers/cli.js';
import { api, createJob, startTestServer, tempDir, TOKEN, waitFor, type TestServer } from './helpers/server.js';

const status = async (server: TestServer, kind: 'build' | 'run', id: string) =>
  ((await (await api(server, server.token)(`/v2/actor-${kind}s/${id}`)).json()) as { data: { status: string; actId: string } }).data;

describe('jobs', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ gracefulAbortSecs: 1 });
  });
  after(() => server.stop());

  test('a graceful abort leaves a run ABORTING until --graceful-abort-secs pass, then the server sets ABORTED', async () => {
    const id = await createJob(server, 'run');
    const res = await api(server, server.token)(`/v2/actor-runs/${id}/abort?gracefully=1`, { method: 'POST' });
    assert.equal(((await res.json()) as { data: { status: string } }).data.status, 'ABORTING');
    assert.equal((await status(server, 'run', id)).status, 'ABORTING');
    // Polled in the store: polling the API this often would meet the per-job rate limit.
    await waitFor(async () => (await server.store.getJob(id))?.status === 'ABORTED', 10_000, 'ABORTED after the grace period');
  });

  test('a graceful abort survives a restart of the server: the restarted one sets ABORTED', async () => {
    const dataDir = tempDir();
    try {
      const first = await startTestServer({ dataDir, gracefulAbortSecs: 1 });
      const id = await createJob(first, 'run');
      await api(first, first.token)(`/v2/actor-runs/${id}/abort?gracefully=1`, { method: 'POST' });
      await first.stop();
      const second = await startTestServer({ dataDir, gracefulAbortSecs: 1 });
      try {
        await waitFor(async () => (await second.store.getJob(id))?.status === 'ABORTED', 10_000, 'ABORTED after the restart');
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('a producer that finishes within the grace period makes it ABORTED at once', async () => {
    const slow = await startTestServer({ gracefulAbortSecs: 3600 });
    try {
      const id = await createJob(slow, 'run');
      await api(slow, slow.token)(`/v2/actor-runs/${id}/abort?gracefully=1`, { method: 'POST' });
      const put = await api(slow, slow.token)(`/v2/actor-runs/${id}`, { method: 'PUT', json: { status: 'ABORTED' } });
      assert.equal(put.status, 200);
      assert.equal((await status(slow, 'run', id)).status, 'ABORTED');
    } finally {
      await slow.stop();
    }
  });

  test('a job created without actId belongs to actor "default"', async () => {
    const id = await createJob(server, 'build');
    assert.equal((await status(server, 'build', id)).actId, 'default');
  });

  test('the per-job rate limit covers the job object, not only its log', async () => {
    const limited = await startTestServer({ rateLimitPerResource: 2 });
    try {
      const id = await createJob(limited, 'build');
      // 2 per second: twenty requests at once cannot all fall into windows of their own.
      const answers = await Promise.all(Array.from({ length: 20 }, () => api(limited)(`/v2/actor-builds/${id}`)));
      const refused = answers.filter((r) => r.status === 429);
      assert.ok(refused.length > 0, 'some requests to the job object were refused');
      assert.equal(((await refused[0]!.json()) as { error: { type: string } }).error.type, 'rate-limit-exceeded');
      assert.ok(Number(refused[0]!.headers.get('retry-after')) >= 1);
      for (const r of answers) if (!r.bodyUsed) await r.body?.cancel();
    } finally {
      await limited.stop();
    }
  });

  test('apify-client run(id).get({ waitForFinish }) holds until the run finishes', async () => {
    const id = await createJob(server, 'run');
    const client = new ApifyClient({ baseUrl: server.url, token: server.token });
    const pending = client.run(id).get({ waitForFinish: 30 });
    // Finished only once the request is waiting (its subscription is in place before it reads the job).
    await waitFor(() => server.bus instanceof MemoryBus && server.bus.subscribedJobs > 0, 5000, 'the waiting request');
    await api(server, server.token)(`/v2/actor-runs/${id}`, { method: 'PUT', json: { status: 'SUCCEEDED' } });
    assert.equal((await pending)?.status, 'SUCCEEDED');
  });
});

describe('waitForFinish is clamped to 0-60 s', () => {
  test('a wait of 120 s answers after 60 s with the job as it is; a negative one at once', async (t) => {
    const dir = tempDir();
    const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
    const service = new JobService(store, new MemoryBus());
    t.after(async () => {
      service.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const user: UserRecord = { id: 'user0000000000001', username: 'u', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
    await store.createUser(user);
    const job = await service.create({ kind: 'run', user });
    assert.equal((await service.waitForFinish(job, -5)).status, 'RUNNING');
    mock.timers.enable({ apis: ['setTimeout'] });
    try {
      let answered = false;
      const waiting = service.waitForFinish(job, 120).then((j) => ((answered = true), j));
      // Let the wait set its timer (its first look at the job is a store read).
      await new Promise((r) => setImmediate(r));
      mock.timers.tick(59_999);
      await new Promise((r) => setImmediate(r));
      assert.equal(answered, false, 'still waiting just before 60 s');
      mock.timers.tick(1);
      assert.equal((await waiting).status, 'RUNNING');
    } finally {
      mock.timers.reset();
    }
  });
});

describe('the request log', () => {
  test('holds method, URL (tokens redacted) and address only, never headers', async () => {
    const dataDir = tempDir();
    const server = await spawnServer(['--data', dataDir, '--log-level', 'info', '--log-format', 'json'], { BUILDLOG_TOKEN: TOKEN });
    try {
      await fetch(`${server.url}/v2/actor-builds?token=${TOKEN}`, { headers: { authorization: `Bearer ${TOKEN}`, cookie: 'session=secret-cookie', 'x-secret': 'secret-header' } });
      await waitFor(() => server.stdout().includes('"res"'), 10_000, 'the request lines');
      const requests = server
        .stdout()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { req?: Record<string, unknown> })
        .filter((l) => l.req);
      assert.ok(requests.length > 0);
      for (const { req } of requests) {
        assert.deepEqual(Object.keys(req!).sort(), ['method', 'remoteAddress', 'url']);
        assert.equal(req!.url, '/v2/actor-builds?token=[REDACTED]');
      }
      for (const secret of [TOKEN, 'secret-cookie', 'secret-header']) assert.ok(!server.stdout().includes(secret), `${secret} is not in the server log`);
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('inactivity', () => {
  test('jobs left running by an earlier server are timed out by the sweep at start, not only the periodic one', async () => {
    const dataDir = tempDir();
    const store = new SqliteStore({ dataDir, retentionChars: 1000 });
    const user: UserRecord = { id: 'user0000000000001', username: 'u', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
    await store.createUser(user);
    const service = new JobService(store, new MemoryBus());
    const job = await service.create({ kind: 'build', user });
    service.close();
    await store.close();
    // Its last activity, made 10 minutes ago through SQLite itself, as if the server had been down since.
    const db = new Database(`${dataDir}/buildlog.db`);
    db.prepare('UPDATE jobs SET active_at = ? WHERE id = ?').run(Date.now() - 600_000, job.id);
    db.close();
    // A 120 s timeout (and a 3600 s grace period) sweeps every 30 s: a TIMED-OUT within 10 s comes from the sweep at start.
    const server = await startServer({ ...resolveConfig({}, {}), host: '127.0.0.1', port: 0, dataDir, token: TOKEN, inactivityTimeoutSecs: 120, gracefulAbortSecs: 3600 });
    try {
      await waitFor(async () => (await server.store.getJob(job.id))?.status === 'TIMED-OUT', 10_000, 'TIMED-OUT');
    } finally {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('slow requests', () => {
  test('a request whose body does not arrive within --request-timeout is answered 408 and its connection closed', async () => {
    const server = await startTestServer({ requestTimeoutSecs: 1, headersTimeoutSecs: 1 });
    try {
      const id = await createJob(server);
      const { port } = new URL(server.url);
      const socket = connect(Number(port), '127.0.0.1');
      let answer = '';
      socket.on('data', (c: Buffer) => (answer += c.toString('latin1')));
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(
        `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\n` +
          'Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\nonly ten b',
      );
      // The rest never comes: within the timeout plus the server's check interval (1 s each), it answers.
      await waitFor(() => answer.length > 0, 10_000, 'an answer');
      await closed;
      assert.match(answer, /^HTTP\/1\.1 408 /);
      assert.match(answer, /"type":"request-timeout"/);
      assert.equal((await server.store.logInfo(id))?.length, 0, 'nothing of the unfinished body was stored');
    } finally {
      await server.stop();
    }
  });
});

