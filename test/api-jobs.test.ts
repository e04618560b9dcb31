import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { createUser } from '../src/auth/tokens.js';
import type { MemoryBus } from '../src/live/memory.js';
import { within } from './helpers/http.js';
import { api, append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

type Json = Record<string, unknown>;
type Job = Json & {
  id: string;
  status: string;
  startedAt: string;
  finishedAt: string | null;
  statusMessage: string | null;
  exitCode: number | null;
  stats: { durationMillis: number };
  meta: { origin: string };
};

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


/** Every key ending in `At`, at any depth, is an ISO-8601 string or null. */
function assertIsoDates(value: unknown, path = '$'): void {
  if (Array.isArray(value)) return value.forEach((v, i) => assertIsoDates(v, `${path}[${i}]`));
  if (value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    if (key.endsWith('At')) {
      assert.ok(v === null || (typeof v === 'string' && ISO.test(v)), `${path}.${key} is ISO or null: ${String(v)}`);
    }
    assertIsoDates(v, `${path}.${key}`);
  }
}

/** Asserts a JSON 200/201 `{data}` answer and returns data. */
async function data<T = Job>(res: Response, status = 200): Promise<T> {
  const body = await res.text();
  assert.equal(res.status, status, body);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json(;|$)/);
  const parsed = JSON.parse(body) as { data: T };
  assert.deepEqual(Object.keys(parsed), ['data']);
  assertIsoDates(parsed.data);
  return parsed.data;
}

async function errorOf(res: Response, status: number): Promise<{ type: string; message: string }> {
  assert.equal(res.status, status);
  const body = (await res.json()) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  return body.error;
}

const BUILD_FIELDS = ['id', 'actId', 'userId', 'startedAt', 'finishedAt', 'status', 'meta', 'buildNumber', 'stats', 'exitCode'];
const RUN_FIELDS = [...BUILD_FIELDS, 'buildId', 'statusMessage', 'options'];

function assertFields(job: Json, fields: string[]): void {
  for (const f of fields) assert.ok(f in job, `field ${f} is present`);
  assert.ok('origin' in (job.meta as Json), 'meta.origin is present');
  assert.equal(typeof (job.stats as Json).durationMillis, 'number', 'stats.durationMillis is a number');
}

describe('job objects and lifecycle', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  let me: { id: string; username: string };
  let otherToken: string;

  before(async () => {
    server = await startTestServer();
    call = api(server, server.token);
    me = await data(await call('/v2/users/me'));
    otherToken = (await createUser(server.store, 'someone-else')).token;
  });
  after(async () => {
    await server.stop();
  });

  describe('create and read', () => {
    test('POST /v2/actor-builds: 201, RUNNING, startedAt, every field', async () => {
      const res = await call('/v2/actor-builds', {
        method: 'POST',
        json: { actId: 'my-actor', buildNumber: '0.1.2', meta: { gitBranch: 'main' } },
      });
      const build = await data(res, 201);
      assert.equal(res.headers.get('location'), `/v2/actor-builds/${build.id}`);
      assertFields(build, BUILD_FIELDS);
      assert.match(build.id, /^[A-Za-z0-9]{17}$/);
      assert.equal(build.status, 'RUNNING');
      assert.match(build.startedAt, ISO);
      assert.ok(Math.abs(Date.parse(build.startedAt) - Date.now()) < 60_000);
      assert.equal(build.finishedAt, null);
      assert.equal(build.exitCode, null);
      assert.equal(build.actId, 'my-actor');
      assert.equal(build.userId, me.id);
      assert.equal(build.buildNumber, '0.1.2');
      assert.deepEqual(build.meta, { origin: 'API', clientIp: null, userAgent: null, gitBranch: 'main' });
      assert.ok(build.stats.durationMillis >= 0);
      // GET gives the same object.
      const got = await data(await api(server)(`/v2/actor-builds/${build.id}`));
      assert.deepEqual({ ...got, stats: null }, { ...build, stats: null });
    });

    test('a build created without a body: unknown fields are null, never missing', async () => {
      const build = await data(await call('/v2/actor-builds', { method: 'POST' }), 201);
      assertFields(build, BUILD_FIELDS);
      assert.equal(build.status, 'RUNNING');
      assert.equal(build.buildNumber, null);
      assert.equal(build.exitCode, null);
      assert.equal(build.finishedAt, null);
      assert.equal(build.statusMessage, null);
      assert.equal(typeof build.actId, 'string');
    });

    test('POST /v2/actor-runs: a run has every build field plus buildId, statusMessage, options', async () => {
      const buildId = await createJob(server, 'build', { actId: 'runner' });
      const run = await data(
        await call('/v2/actor-runs', { method: 'POST', json: { actId: 'runner', buildId, buildNumber: '1.0.3', options: { memoryMbytes: 1024 } } }),
        201,
      );
      assertFields(run, RUN_FIELDS);
      assert.equal(run.status, 'RUNNING');
      assert.equal(run.buildId, buildId);
      assert.equal(run.statusMessage, null);
      assert.equal((run.options as Json).memoryMbytes, 1024);
      assert.equal((run.options as Json).build, '1.0.3');
      const bare = await data(await call('/v2/actor-runs', { method: 'POST', json: { actId: 'never-built' } }), 201);
      assertFields(bare, RUN_FIELDS);
      assert.equal(bare.buildId, null);
      assert.equal(bare.buildNumber, null);
      assert.equal(bare.exitCode, null);
      assert.equal(typeof bare.options, 'object');
      assert.notEqual(bare.options, null);
      assert.deepEqual(await data(await api(server)(`/v2/actor-runs/${bare.id}`)).then((j) => j.buildId), null);
    });

    test('a finished job has finishedAt, exitCode and a fixed duration', async () => {
      const id = await createJob(server, 'run');
      const done = await data(await call(`/v2/actor-runs/${id}`, { method: 'PUT', json: { status: 'FAILED', statusMessage: 'exit 3', exitCode: 3 } }));
      assertFields(done, RUN_FIELDS);
      assert.equal(done.status, 'FAILED');
      assert.equal(done.statusMessage, 'exit 3');
      assert.equal(done.exitCode, 3);
      assert.match(done.finishedAt!, ISO);
      assert.equal(done.stats.durationMillis, Date.parse(done.finishedAt!) - Date.parse(done.startedAt));
      const again = await data(await api(server)(`/v2/actor-runs/${id}`));
      assert.deepEqual(again, done);
    });
  });

  describe('PUT transitions', () => {
    test('READY → RUNNING → SUCCEEDED; repeating the terminal PUT is 200 and changes nothing', async () => {
      const ready = await data(await call('/v2/actor-builds', { method: 'POST', json: { status: 'READY' } }), 201);
      assert.equal(ready.status, 'READY');
      const running = await data(await call(`/v2/actor-builds/${ready.id}`, { method: 'PUT', json: { status: 'RUNNING' } }));
      assert.equal(running.status, 'RUNNING');
      assert.equal(running.finishedAt, null);
      // Setting the status a job already has is a harmless no-op.
      assert.equal((await data(await finish(server, ready.id, 'RUNNING'))).status, 'RUNNING');
      const done = await data(
        await call(`/v2/actor-builds/${ready.id}`, { method: 'PUT', json: { status: 'SUCCEEDED', statusMessage: 'ok', exitCode: 0 } }),
      );
      assert.equal(done.status, 'SUCCEEDED');
      assert.equal(done.exitCode, 0);
      assert.equal(done.statusMessage, 'ok');
      assert.match(done.finishedAt!, ISO);
      await sleep(5); // so that a second finish would get another finishedAt
      const repeated = await data(
        await call(`/v2/actor-builds/${ready.id}`, { method: 'PUT', json: { status: 'SUCCEEDED', statusMessage: 'other', exitCode: 9 } }),
      );
      assert.deepEqual(repeated, done);
      assert.deepEqual(await data(await api(server)(`/v2/actor-builds/${ready.id}`)), done);
    });

    test('ABORTING → ABORTED and TIMING-OUT → TIMED-OUT', async () => {
      for (const [kind, middle, end] of [
        ['run', 'ABORTING', 'ABORTED'],
        ['build', 'TIMING-OUT', 'TIMED-OUT'],
      ] as const) {
        const id = await createJob(server, kind);
        const mid = await data(await finish(server, id, middle, kind));
        assert.equal(mid.status, middle);
        assert.equal(mid.finishedAt, null);
        const last = await data(await finish(server, id, end, kind));
        assert.equal(last.status, end);
        assert.match(last.finishedAt!, ISO);
        assert.deepEqual(await data(await finish(server, id, end, kind)), last);
      }
    });

    test('a statusMessage update on a running job', async () => {
      const id = await createJob(server, 'run');
      const updated = await data(await call(`/v2/actor-runs/${id}`, { method: 'PUT', json: { status: 'RUNNING', statusMessage: 'step 2/5' } }));
      assert.equal(updated.status, 'RUNNING');
      assert.equal(updated.statusMessage, 'step 2/5');
    });

    test('a terminal PUT ends live log streams', async () => {
      const id = await createJob(server);
      await append(server, id, 'x\n');
      const res = await fetch(`${server.url}/v2/logs/${id}?stream=1`);
      await finish(server, id, 'FAILED');
      assert.equal(await within(res.text(), 10_000, 'the stream to end'), 'x\n');
    });
  });

  describe('waitForFinish', () => {
    test('holds the answer until the job finishes', async () => {
      const id = await createJob(server);
      const timer = setTimeout(() => void finish(server, id, 'SUCCEEDED'), 300);
      try {
        const job = await data(await api(server)(`/v2/actor-builds/${id}?waitForFinish=30`));
        assert.equal(job.status, 'SUCCEEDED');
        assert.match(job.finishedAt!, ISO);
      } finally {
        clearTimeout(timer);
      }
    });

    test('values above 60 are accepted (clamped) on runs too', async () => {
      const id = await createJob(server, 'run');
      const timer = setTimeout(() => void finish(server, id, 'ABORTED', 'run'), 300);
      try {
        const job = await data(await api(server)(`/v2/actor-runs/${id}?waitForFinish=999999`));
        assert.equal(job.status, 'ABORTED');
      } finally {
        clearTimeout(timer);
      }
    });

    test('a terminal job answers at once, whatever the wait', async () => {
      const id = await createJob(server);
      await finish(server, id, 'SUCCEEDED');
      const job = await data(await api(server)(`/v2/actor-builds/${id}?waitForFinish=999999`));
      assert.equal(job.status, 'SUCCEEDED');
    });

    test('waitForFinish=0 and a short wait on a job that does not finish return it as it is', async () => {
      const id = await createJob(server);
      assert.equal((await data(await api(server)(`/v2/actor-builds/${id}?waitForFinish=0`))).status, 'RUNNING');
      assert.equal((await data(await api(server)(`/v2/actor-builds/${id}?waitForFinish=0.05`))).status, 'RUNNING');
    });

    test('ABORTING is not finished: the wait goes on until ABORTED', async () => {
      const id = await createJob(server, 'run');
      await data(await call(`/v2/actor-runs/${id}/abort?gracefully=1`, { method: 'POST' }));
      const timer = setTimeout(() => void finish(server, id, 'ABORTED', 'run'), 300);
      try {
        const job = await data(await api(server)(`/v2/actor-runs/${id}?waitForFinish=30`));
        assert.equal(job.status, 'ABORTED');
      } finally {
        clearTimeout(timer);
      }
    });

    test('a client that goes away while waiting frees the subscription', async () => {
      const bus = server.bus as MemoryBus;
      await waitFor(() => bus.subscribedJobs === 0, 10_000, 'no followers from earlier tests');
      const id = await createJob(server);
      const req = request(`${server.url}/v2/actor-builds/${id}?waitForFinish=60`, { agent: false });
      req.on('error', () => undefined);
      req.end();
      await waitFor(() => bus.subscribedJobs === 1, 10_000, 'the wait to subscribe');
      req.destroy();
      await waitFor(() => bus.subscribedJobs === 0, 10_000, 'the wait to unsubscribe');
      assert.equal((await data(await api(server)(`/v2/actor-builds/${id}`))).status, 'RUNNING');
    });
  });

  describe('abort', () => {
    test('aborting a running build → ABORTED (also when gracefully is asked: builds ignore it)', async () => {
      for (const query of ['', '?gracefully=1']) {
        const id = await createJob(server);
        const aborted = await data(await call(`/v2/actor-builds/${id}/abort${query}`, { method: 'POST' }));
        assert.equal(aborted.status, 'ABORTED');
        assert.match(aborted.finishedAt!, ISO);
        assert.equal((await data(await api(server)(`/v2/actor-builds/${id}`))).status, 'ABORTED');
      }
    });

    test('aborting a finished job changes nothing and returns it', async () => {
      for (const status of ['SUCCEEDED', 'FAILED', 'ABORTED']) {
        const id = await createJob(server);
        const done = await data(await finish(server, id, status));
        await sleep(5); // the clock moves on, so that an abort that changed anything would show a later time
        assert.deepEqual(await data(await call(`/v2/actor-builds/${id}/abort`, { method: 'POST' })), done);
      }
    });

    test('aborting a run gracefully → ABORTING, then a hard abort → ABORTED', async () => {
      const id = await createJob(server, 'run');
      const aborting = await data(await call(`/v2/actor-runs/${id}/abort?gracefully=1`, { method: 'POST' }));
      assert.equal(aborting.status, 'ABORTING');
      assert.equal(aborting.finishedAt, null);
      // The producer may still append while the run winds down.
      assert.equal((await append(server, id, 'cleaning up\n')).status, 200);
      assert.equal((await data(await call(`/v2/actor-runs/${id}/abort?gracefully=true`, { method: 'POST' }))).status, 'ABORTING');
      const aborted = await data(await call(`/v2/actor-runs/${id}/abort`, { method: 'POST' }));
      assert.equal(aborted.status, 'ABORTED');
      assert.match(aborted.finishedAt!, ISO);
    });

    test('aborting a run without gracefully, and a READY one', async () => {
      const id = await createJob(server, 'run');
      assert.equal((await data(await call(`/v2/actor-runs/${id}/abort?gracefully=0`, { method: 'POST' }))).status, 'ABORTED');
      const ready = await createJob(server, 'run', { status: 'READY' });
      assert.equal((await data(await call(`/v2/actor-runs/${ready}/abort`, { method: 'POST' }))).status, 'ABORTED');
    });

    test('an abort with a JSON body, as the JS client may send, and with an empty one', async () => {
      const a = await createJob(server, 'run');
      assert.equal((await data(await call(`/v2/actor-runs/${a}/abort`, { method: 'POST', json: {} }))).status, 'ABORTED');
      const b = await createJob(server, 'run');
      const res = await call(`/v2/actor-runs/${b}/abort`, { method: 'POST', body: '', headers: { 'content-type': 'application/json' } });
      assert.equal((await data(res)).status, 'ABORTED');
    });

    test('abort ends a live log stream', async () => {
      const id = await createJob(server, 'run');
      await append(server, id, 'working\n');
      const res = await fetch(`${server.url}/v2/actor-runs/${id}/log?stream=1`);
      assert.equal(res.status, 200);
      await data(await call(`/v2/actor-runs/${id}/abort`, { method: 'POST' }));
      assert.equal(await within(res.text(), 10_000, 'the stream to end'), 'working\n');
    });

    test('a bad gracefully value is 400', async () => {
      const id = await createJob(server, 'run');
      const err = await errorOf(await call(`/v2/actor-runs/${id}/abort?gracefully=maybe`, { method: 'POST' }), 400);
      assert.equal(err.type, 'invalid-input');
      assert.match(err.message, /"gracefully"/);
    });
  });

  describe('actors', () => {
    test('/v2/actors/:id, /v2/acts/:id and username~name', async () => {
      const first = await createJob(server, 'build', { actId: 'hello-world', buildNumber: '0.0.1' });
      await sleep(5); // distinct startedAt, so "latest" is well defined
      const second = await createJob(server, 'build', { actId: 'hello-world', buildNumber: '0.0.2' });
      await finish(server, second, 'SUCCEEDED');
      assert.notEqual(first, second);
      for (const ref of ['hello-world', `${me.username}~hello-world`]) {
        for (const base of ['/v2/actors', '/v2/acts']) {
          const actor = await data<Json & { taggedBuilds: { latest: Json } }>(await call(`${base}/${ref}`));
          assert.equal(actor.id, 'hello-world');
          assert.equal(actor.name, 'hello-world');
          assert.equal(actor.username, me.username);
          assert.equal(actor.taggedBuilds.latest.buildId, second);
          assert.equal(actor.taggedBuilds.latest.buildNumber, '0.0.2');
          assert.match(String(actor.taggedBuilds.latest.finishedAt), ISO);
        }
      }
    });

    test('an actor known only from runs has no tagged builds', async () => {
      await createJob(server, 'run', { actId: 'only-runs' });
      const actor = await data<Json>(await api(server)('/v2/actors/only-runs'));
      assert.equal(actor.name, 'only-runs');
      assert.deepEqual(actor.taggedBuilds, {});
    });

    test("username~name picks that user's actor", async () => {
      const mine = await createJob(server, 'build', { actId: 'shared-name' });
      const theirs = await createJob(
        { ...server, token: otherToken },
        'build',
        { actId: 'shared-name' },
      );
      const a = await data<Json & { taggedBuilds: { latest: Json } }>(await call(`/v2/actors/${me.username}~shared-name`));
      assert.equal(a.taggedBuilds.latest.buildId, mine);
      const b = await data<Json & { taggedBuilds: { latest: Json } }>(await api(server, otherToken)('/v2/actors/someone-else~shared-name'));
      assert.equal(b.taggedBuilds.latest.buildId, theirs);
      assert.equal(b.username, 'someone-else');
      // Tags name build ids (read capabilities): only the owner sees them.
      const seen = await data<Json>(await call('/v2/actors/someone-else~shared-name'));
      assert.deepEqual([seen.username, seen.taggedBuilds, seen.versions], ['someone-else', {}, []]);
    });

    test('an unknown actor is 404 record-not-found', async () => {
      for (const ref of ['no-such-actor', `${me.username}~no-such-actor`, 'nobody~hello-world', 'someone-else~hello-world']) {
        for (const base of ['/v2/actors', '/v2/acts']) {
          const err = await errorOf(await api(server)(`${base}/${ref}`), 404);
          assert.equal(err.type, 'record-not-found', `${base}/${ref}`);
        }
      }
    });
  });

  describe('users/me', () => {
    test('with a token: id, username, proxy.password', async () => {
      const user = await data<Json & { proxy: { password: string; groups: unknown[] }; profile: Json; plan: Json }>(await call('/v2/users/me'));
      assert.match(String(user.id), /^[A-Za-z0-9]{17}$/);
      assert.equal(user.username, 'admin');
      assert.equal(typeof user.proxy.password, 'string');
      assert.ok(user.proxy.password.length > 0);
      assert.ok(Array.isArray(user.proxy.groups));
      assert.equal(typeof user.profile, 'object');
      assert.equal(typeof user.plan, 'object');
      // ?token= works as well, and another token is another user.
      const viaQuery = await data<Json>(await fetch(`${server.url}/v2/users/me?token=${server.token}`));
      assert.equal(viaQuery.id, user.id);
      const other = await data<Json>(await api(server, otherToken)('/v2/users/me'));
      assert.equal(other.username, 'someone-else');
      assert.notEqual(other.id, user.id);
    });

    test('without a token: 401', async () => {
      const err = await errorOf(await fetch(`${server.url}/v2/users/me`), 401);
      assert.equal(err.type, 'token-not-valid');
    });
  });
});
