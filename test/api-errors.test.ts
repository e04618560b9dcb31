// The API's refusals by status, in the Apify envelope with the messages Apify uses: 400, 401, 403, 404
// (test/api-errors-http.test.ts: 405, 413, 415, bodies that do not decompress, CORS).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createUser } from '../src/auth/tokens.js';
import { assertEnvelope, assertFetchEnvelope } from './helpers/envelope.js';
import { rawRequest as raw } from './helpers/http.js';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const NOT_FOUND_ANY = 'The requested resource was not found.';
const MISSING_ID = 'AAAAAAAAAAAAAAAAA';

describe('API errors', () => {
  let server: TestServer;
  let other: { token: string };

  before(async () => {
    server = await startTestServer();
    other = await createUser(server.store, 'other-user');
  });
  after(async () => {
    await server.stop();
  });

  describe('400 invalid-input', () => {
    for (const param of ['stream', 'raw', 'download']) {
      for (const path of ['/v2/actor-builds/ID/log', '/v2/logs/ID']) {
        test(`bad ${param} value on ${path} names the parameter`, async () => {
          const id = await createJob(server);
          const res = await raw(server, 'GET', `${path.replace('ID', id)}?${param}=yes`);
          const message = assertEnvelope(res, 400, 'invalid-input');
          assert.match(message, new RegExp(`"${param}"`));
        });
      }
    }

    test('a repeated boolean parameter is invalid too', async () => {
      const id = await createJob(server);
      const res = await raw(server, 'GET', `/v2/logs/${id}?raw=1&raw=0`);
      assert.match(assertEnvelope(res, 400, 'invalid-input'), /"raw"/);
    });

    test('bad boolean on a run log', async () => {
      const id = await createJob(server, 'run');
      const res = await raw(server, 'GET', `/v2/actor-runs/${id}/log?download=2`);
      assert.match(assertEnvelope(res, 400, 'invalid-input'), /"download"/);
    });

    for (const value of ['abc', '-1', '1e3', '10s']) {
      test(`bad waitForFinish=${value}`, async () => {
        const id = await createJob(server);
        const res = await raw(server, 'GET', `/v2/actor-builds/${id}?waitForFinish=${encodeURIComponent(value)}`);
        assert.match(assertEnvelope(res, 400, 'invalid-input'), /waitForFinish/);
      });
    }

    for (const value of ['abc', '-5', '1.5', '']) {
      test(`bad X-Log-Offset "${value}"`, async () => {
        const id = await createJob(server);
        const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
          headers: { ...auth(server.token), 'content-type': 'application/octet-stream', 'x-log-offset': value },
          body: 'hello',
        });
        assert.match(assertEnvelope(res, 400, 'invalid-input'), /X-Log-Offset/);
      });
    }

    test('an append that leaves a gap is 400 with the current length in X-Log-Length', async () => {
      const id = await createJob(server);
      assert.equal((await append(server, id, 'hello\n', 0)).status, 200);
      const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(server.token), 'content-type': 'application/octet-stream', 'x-log-offset': '100' },
        body: 'gap',
      });
      assertEnvelope(res, 400, 'invalid-input', /X-Log-Offset/);
      assert.equal(res.headers['x-log-length'], '6');
      // An offset inside the log whose bytes differ is no retry either.
      const overlap = await append(server, id, 'HELLO', 1);
      assert.equal(overlap.status, 400);
      assert.equal(overlap.headers.get('x-log-length'), '6');
      await assertFetchEnvelope(overlap, 400, 'invalid-input');
    });

    test('append to a terminal job', async () => {
      const id = await createJob(server);
      assert.equal((await append(server, id, 'done\n')).status, 200);
      assert.equal((await finish(server, id, 'SUCCEEDED')).status, 200);
      await assertFetchEnvelope(await append(server, id, 'late\n'), 400, 'invalid-input', /finished/);
      await assertFetchEnvelope(await append(server, id, 'late\n', 5), 400, 'invalid-input');
    });

    for (const status of ['DONE', 'succeeded', 'READY', 42, null]) {
      test(`bad status ${JSON.stringify(status)} in PUT`, async () => {
        const id = await createJob(server);
        const res = await api(server, server.token)(`/v2/actor-builds/${id}`, { method: 'PUT', json: { status } });
        await assertFetchEnvelope(res, 400, 'invalid-input', /"status"/);
      });
    }

    test('PUT without a status', async () => {
      const id = await createJob(server, 'run');
      const res = await api(server, server.token)(`/v2/actor-runs/${id}`, { method: 'PUT', json: { statusMessage: 'x' } });
      await assertFetchEnvelope(res, 400, 'invalid-input', /"status"/);
    });

    test('PUT with a body that is not an object', async () => {
      const id = await createJob(server);
      const res = await api(server, server.token)(`/v2/actor-builds/${id}`, { method: 'PUT', json: ['SUCCEEDED'] });
      await assertFetchEnvelope(res, 400, 'invalid-input');
    });

    for (const [from, to] of [
      ['SUCCEEDED', 'FAILED'],
      ['FAILED', 'SUCCEEDED'],
      ['ABORTED', 'RUNNING'],
      ['SUCCEEDED', 'ABORTING'],
    ]) {
      test(`illegal transition ${from} → ${to}`, async () => {
        const id = await createJob(server);
        assert.equal((await finish(server, id, from)).status, 200);
        const res = await finish(server, id, to);
        await assertFetchEnvelope(res, 400, 'invalid-input', `Cannot change status from ${from} to ${to}.`);
        const job = (await (await api(server)(`/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
        assert.equal(job.data.status, from);
      });
    }

    test('ABORTING cannot become SUCCEEDED', async () => {
      const id = await createJob(server, 'run');
      assert.equal((await finish(server, id, 'ABORTING', 'run')).status, 200);
      await assertFetchEnvelope(await finish(server, id, 'SUCCEEDED', 'run'), 400, 'invalid-input', /ABORTING to SUCCEEDED/);
    });

    test('invalid JSON body on create and on PUT', async () => {
      const create = await raw(server, 'POST', '/v2/actor-builds', {
        headers: { ...auth(server.token), 'content-type': 'application/json' },
        body: '{"actId": ',
      });
      assertEnvelope(create, 400, 'invalid-input', /JSON/);
      const id = await createJob(server);
      const put = await raw(server, 'PUT', `/v2/actor-builds/${id}`, {
        headers: { ...auth(server.token), 'content-type': 'application/json' },
        body: '{status:SUCCEEDED}',
      });
      assertEnvelope(put, 400, 'invalid-input', /JSON/);
    });

    test('invalid field values on create', async () => {
      const post = (json: unknown) => api(server, server.token)('/v2/actor-runs', { method: 'POST', json });
      await assertFetchEnvelope(await post({ actId: 'has space' }), 400, 'invalid-input', /"actId"/);
      await assertFetchEnvelope(await post({ meta: 'x' }), 400, 'invalid-input', /"meta"/);
      await assertFetchEnvelope(await post({ status: 'SUCCEEDED' }), 400, 'invalid-input', /"status"/);
      await assertFetchEnvelope(await post([1]), 400, 'invalid-input');
    });
  });

  describe('401 token-not-valid', () => {
    test('an unknown token in the header, on reads and writes', async () => {
      const id = await createJob(server);
      for (const [method, path] of [
        ['GET', `/v2/logs/${id}`],
        ['GET', `/v2/actor-builds/${id}`],
        ['GET', `/v2/actor-builds/${id}/log`],
        ['POST', `/v2/logs/${id}/chunks`],
        ['POST', '/v2/actor-builds'],
        ['GET', '/v2/users/me'],
      ] as const) {
        const res = await raw(server, method, path, { headers: auth('not-a-real-token') });
        assertEnvelope(res, 401, 'token-not-valid', 'Authentication token is not valid.');
      }
    });

    test('an unknown token in ?token=', async () => {
      const id = await createJob(server);
      assertEnvelope(await raw(server, 'GET', `/v2/logs/${id}?token=nope`), 401, 'token-not-valid', 'Authentication token is not valid.');
      assertEnvelope(await raw(server, 'GET', '/v2/users/me?token=nope'), 401, 'token-not-valid');
      // A valid ?token= is accepted.
      const me = await raw(server, 'GET', `/v2/users/me?token=${server.token}`);
      assert.equal(me.status, 200);
    });

    test('a malformed Authorization header is an invalid token', async () => {
      const res = await raw(server, 'GET', '/v2/users/me', { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
      assertEnvelope(res, 401, 'token-not-valid');
    });

    test('writes without a token', async () => {
      const id = await createJob(server);
      const runId = await createJob(server, 'run');
      const cases: [string, string, string | undefined][] = [
        ['POST', '/v2/actor-builds', '{}'],
        ['POST', '/v2/actor-runs', '{}'],
        ['POST', `/v2/logs/${id}/chunks`, 'data'],
        ['PUT', `/v2/actor-builds/${id}`, '{"status":"SUCCEEDED"}'],
        ['PUT', `/v2/actor-runs/${runId}`, '{"status":"SUCCEEDED"}'],
        ['POST', `/v2/actor-builds/${id}/abort`, undefined],
        ['POST', `/v2/actor-runs/${runId}/abort`, undefined],
      ];
      for (const [method, path, body] of cases) {
        const headers: Record<string, string> =
          body === undefined ? {} : { 'content-type': path.endsWith('/chunks') ? 'text/plain' : 'application/json' };
        const res = await raw(server, method, path, { headers, body });
        assertEnvelope(res, 401, 'token-not-valid', 'Authentication token was not provided.');
      }
      // Nothing changed.
      const job = (await (await api(server)(`/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
      assert.equal(job.data.status, 'RUNNING');
      assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '');
    });
  });

  describe('403 permission-denied', () => {
    test("another user's token on someone else's job", async () => {
      const id = await createJob(server);
      const runId = await createJob(server, 'run');
      const cases: [string, string, string | undefined, string][] = [
        ['POST', `/v2/logs/${id}/chunks`, 'intruder', 'text/plain'],
        ['PUT', `/v2/actor-builds/${id}`, '{"status":"FAILED"}', 'application/json'],
        ['PUT', `/v2/actor-runs/${runId}`, '{"status":"FAILED"}', 'application/json'],
        ['POST', `/v2/actor-builds/${id}/abort`, undefined, ''],
        ['POST', `/v2/actor-runs/${runId}/abort?gracefully=1`, undefined, ''],
      ];
      for (const [method, path, body, type] of cases) {
        const headers = { ...auth(other.token), ...(type ? { 'content-type': type } : {}) };
        assertEnvelope(await raw(server, method, path, { headers, body }), 403, 'permission-denied');
      }
      const job = (await (await api(server)(`/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
      assert.equal(job.data.status, 'RUNNING');
      assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '');
      // Reads stay open by id (the default): the other user may read.
      assert.equal((await raw(server, 'GET', `/v2/logs/${id}`, { headers: auth(other.token) })).status, 200);
    });

    test('with private reads, reading another user’s job is 403 and reading without a token 401', async () => {
      const priv = await startTestServer({ privateReads: true });
      try {
        const stranger = await createUser(priv.store, 'stranger');
        const id = await createJob(priv);
        for (const path of [`/v2/logs/${id}`, `/v2/actor-builds/${id}/log`, `/v2/actor-builds/${id}`]) {
          assertEnvelope(await raw(priv, 'GET', path, { headers: auth(stranger.token) }), 403, 'permission-denied');
          assertEnvelope(await raw(priv, 'GET', path), 401, 'token-not-valid');
          assert.equal((await raw(priv, 'GET', path, { headers: auth(priv.token) })).status, 200);
        }
      } finally {
        await priv.stop();
      }
    });
  });

  describe('404', () => {
    test('record-not-found with the text of each path', async () => {
      const cases: [string, string, string][] = [
        ['GET', `/v2/actor-builds/${MISSING_ID}`, 'Actor build was not found'],
        ['GET', `/v2/actor-builds/${MISSING_ID}/log`, 'Actor build was not found'],
        ['POST', `/v2/actor-builds/${MISSING_ID}/abort`, 'Actor build was not found'],
        ['GET', `/v2/actor-runs/${MISSING_ID}`, 'Actor run was not found'],
        ['GET', `/v2/actor-runs/${MISSING_ID}/log`, 'Actor run was not found'],
        ['POST', `/v2/actor-runs/${MISSING_ID}/abort`, 'Actor run was not found'],
        ['GET', `/v2/logs/${MISSING_ID}`, NOT_FOUND_ANY],
        ['GET', `/v2/logs/${MISSING_ID}?stream=1`, NOT_FOUND_ANY],
        ['POST', `/v2/logs/${MISSING_ID}/chunks`, NOT_FOUND_ANY],
        // Ids that cannot exist are the same 404.
        ['GET', '/v2/actor-builds/not-an-id!', 'Actor build was not found'],
        ['GET', '/v2/actor-runs/x_y', 'Actor run was not found'],
        ['GET', '/v2/logs/%E2%9C%93', NOT_FOUND_ANY],
      ];
      for (const [method, path, message] of cases) {
        const headers = method === 'POST' ? { ...auth(server.token), 'content-type': 'text/plain' } : undefined;
        const res = await raw(server, method, path, { headers, body: method === 'POST' ? 'x' : undefined });
        assertEnvelope(res, 404, 'record-not-found', message);
      }
    });

    test('a build id on the runs path, and a run id on the builds path', async () => {
      const buildId = await createJob(server, 'build');
      const runId = await createJob(server, 'run');
      assertEnvelope(await raw(server, 'GET', `/v2/actor-runs/${buildId}`), 404, 'record-not-found', 'Actor run was not found');
      assertEnvelope(await raw(server, 'GET', `/v2/actor-runs/${buildId}/log`), 404, 'record-not-found', 'Actor run was not found');
      assertEnvelope(await raw(server, 'GET', `/v2/actor-builds/${runId}`), 404, 'record-not-found', 'Actor build was not found');
      assertEnvelope(await raw(server, 'GET', `/v2/actor-builds/${runId}/log`), 404, 'record-not-found', 'Actor build was not found');
      const put = await raw(server, 'PUT', `/v2/actor-runs/${buildId}`, {
        headers: { ...auth(server.token), 'content-type': 'application/json' },
        body: '{"status":"SUCCEEDED"}',
      });
      assertEnvelope(put, 404, 'record-not-found', 'Actor run was not found');
      // Build and run ids share one id space: /v2/logs/ serves both.
      assert.equal((await raw(server, 'GET', `/v2/logs/${buildId}`)).status, 200);
      assert.equal((await raw(server, 'GET', `/v2/logs/${runId}`)).status, 200);
    });

    test('page-not-found for paths no endpoint serves', async () => {
      const message = 'We have bad news: there is no API endpoint at this URL. Did you specify it correctly?';
      for (const [method, path] of [
        ['GET', '/v2'],
        ['GET', '/v2/nothing-here'],
        ['GET', '/v3/actor-builds/abc'],
        ['GET', `/v2/actor-builds/${MISSING_ID}/log/extra`],
        ['POST', '/v2/datasets'],
        ['DELETE', '/v2/key-value-stores'],
      ]) {
        assertEnvelope(await raw(server, method!, path!), 404, 'page-not-found', message);
      }
    });
  });

});
