import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { createUser } from '../src/auth/tokens.js';
import { rawRequest as raw, type RawResponse } from './helpers/http.js';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';



/** Asserts the exact Apify error envelope and returns its message. */
function assertEnvelope(res: RawResponse, status: number, type: string, message?: string | RegExp): string {
  assert.equal(res.status, status, `status (body: ${res.body.toString()})`);
  assert.match(String(res.headers['content-type']), /^application\/json(;|$)/);
  const body = JSON.parse(res.body.toString('utf8')) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['message', 'type']);
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.doesNotMatch(body.error.message, /\n\s+at /, 'no stack trace');
  if (typeof message === 'string') assert.equal(body.error.message, message);
  else if (message) assert.match(body.error.message, message);
  return body.error.message;
}

/** The same for a fetch Response. */
async function assertFetchEnvelope(res: Response, status: number, type: string, message?: string | RegExp): Promise<string> {
  const headers: IncomingHttpHeaders = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  return assertEnvelope({ status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) }, status, type, message);
}

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

  describe('405 method-not-allowed', () => {
    const message = (list: string) => `This API end-point can only be accessed using the following HTTP methods: ${list}`;

    test('every path answers other methods with its Allow list', async () => {
      const id = await createJob(server);
      const runId = await createJob(server, 'run');
      const cases: [string, string, string][] = [
        ['DELETE', `/v2/actor-builds/${id}/log`, 'OPTIONS,GET'],
        ['POST', `/v2/actor-builds/${id}/log`, 'OPTIONS,GET'],
        ['PUT', `/v2/actor-runs/${runId}/log`, 'OPTIONS,GET'],
        ['PATCH', `/v2/logs/${id}`, 'OPTIONS,GET'],
        ['DELETE', `/v2/logs/${id}`, 'OPTIONS,GET'],
        ['GET', `/v2/logs/${id}/chunks`, 'OPTIONS,POST'],
        ['PUT', `/v2/logs/${id}/chunks`, 'OPTIONS,POST'],
        ['PUT', '/v2/actor-builds', 'OPTIONS,GET,POST'],
        ['DELETE', '/v2/actor-runs', 'OPTIONS,GET,POST'],
        ['PATCH', `/v2/actor-builds/${id}`, 'OPTIONS,GET,PUT,DELETE'],
        ['POST', `/v2/actor-runs/${runId}`, 'OPTIONS,GET,PUT,DELETE'],
        ['POST', '/v2/acts/thing/runs', 'OPTIONS,GET'],
        ['DELETE', '/v2/actors/thing/runs/last/log', 'OPTIONS,GET'],
        ['GET', `/v2/actor-builds/${id}/abort`, 'OPTIONS,POST'],
        ['PUT', `/v2/actor-runs/${runId}/abort`, 'OPTIONS,POST'],
        ['POST', '/v2/users/me', 'OPTIONS,GET'],
        ['DELETE', '/v2/actors/someone~thing', 'OPTIONS,GET'],
        ['PUT', '/v2/acts/thing', 'OPTIONS,GET'],
      ];
      for (const [method, path, list] of cases) {
        const res = await raw(server, method, path);
        assertEnvelope(res, 405, 'method-not-allowed', message(list));
        assert.equal(res.headers.allow, list, `${method} ${path}`);
      }
    });

    test('405 also for an unknown id (the method is wrong whatever the id)', async () => {
      const res = await raw(server, 'DELETE', `/v2/logs/${MISSING_ID}`);
      assertEnvelope(res, 405, 'method-not-allowed', message('OPTIONS,GET'));
      assert.equal(res.headers.allow, 'OPTIONS,GET');
    });

    test('HEAD on a POST-only path is 405 without a body', async () => {
      const res = await raw(server, 'HEAD', `/v2/actor-builds/${await createJob(server)}/abort`);
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, 'OPTIONS,POST');
      assert.equal(res.body.length, 0);
    });
  });

  describe('413 request-too-large', () => {
    let small: TestServer;
    const LIMIT = 1024;
    before(async () => {
      small = await startTestServer({ maxBodyBytes: LIMIT });
    });
    after(async () => {
      await small.stop();
    });

    test('an append over the limit', async () => {
      const id = await createJob(small);
      const res = await append(small, id, 'x'.repeat(LIMIT + 1));
      await assertFetchEnvelope(res, 413, 'request-too-large', new RegExp(`limit: ${LIMIT} bytes`));
      assert.equal(await (await api(small)(`/v2/logs/${id}`)).text(), '');
      // Exactly at the limit is fine.
      assert.equal((await append(small, id, 'y'.repeat(LIMIT))).status, 200);
    });

    test('an append over the limit without Content-Length (chunked)', async () => {
      const id = await createJob(small);
      const res = await new Promise<RawResponse>((resolve, reject) => {
        const req = request(
          `${small.url}/v2/logs/${id}/chunks`,
          { method: 'POST', headers: { ...auth(small.token), 'content-type': 'text/plain', 'transfer-encoding': 'chunked' } },
          (r) => {
            answered = true;
            const chunks: Buffer[] = [];
            const done = () => resolve({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks) });
            r.on('data', (c: Buffer) => chunks.push(c));
            r.on('end', done);
            r.on('close', done);
          },
        );
        let answered = false;
        // The server may answer and close before the whole body is written: an error after the answer is fine.
        req.on('error', (err) => answered || reject(err));
        req.write('a'.repeat(600));
        req.write('b'.repeat(600));
        req.end();
      });
      assertEnvelope(res, 413, 'request-too-large');
    });

    test('a JSON body over the limit', async () => {
      const res = await api(small, small.token)('/v2/actor-builds', { method: 'POST', json: { meta: { pad: 'p'.repeat(LIMIT) } } });
      await assertFetchEnvelope(res, 413, 'request-too-large');
    });

    for (const [name, compress] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ] as const) {
      test(`a ${name} body that inflates past the limit`, async () => {
        const id = await createJob(small);
        const bomb = compress(Buffer.alloc(64 * LIMIT, 'z'));
        assert.ok(bomb.length < LIMIT, 'the compressed body itself is under the limit');
        const res = await raw(small, 'POST', `/v2/logs/${id}/chunks`, {
          headers: { ...auth(small.token), 'content-type': 'text/plain', 'content-encoding': name },
          body: bomb,
        });
        assertEnvelope(res, 413, 'request-too-large');
        assert.equal(await (await api(small)(`/v2/logs/${id}`)).text(), '');
        // A compressed body that inflates to within the limit is accepted.
        const ok = await raw(small, 'POST', `/v2/logs/${id}/chunks`, {
          headers: { ...auth(small.token), 'content-type': 'text/plain', 'content-encoding': name },
          body: compress(Buffer.from('inflated fine\n')),
        });
        assert.equal(ok.status, 200, ok.body.toString());
        assert.equal(await (await api(small)(`/v2/logs/${id}`)).text(), 'inflated fine\n');
      });
    }
  });

  describe('415 unsupported-content-encoding', () => {
    for (const encoding of ['compress', 'bla', 'gzip, br']) {
      test(`Content-Encoding: ${encoding}`, async () => {
        const id = await createJob(server);
        const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
          headers: { ...auth(server.token), 'content-type': 'text/plain', 'content-encoding': encoding },
          body: 'data',
        });
        assertEnvelope(res, 415, 'unsupported-content-encoding', `Content-Encoding "${encoding}" is not supported.`);
        assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '');
      });
    }

    test('also on a JSON create', async () => {
      const res = await raw(server, 'POST', '/v2/actor-builds', {
        headers: { ...auth(server.token), 'content-type': 'application/json', 'content-encoding': 'zstd' },
        body: '{}',
      });
      assertEnvelope(res, 415, 'unsupported-content-encoding');
    });
  });

  describe('415 unsupported-media-type', () => {
    test('a job body that is not JSON, on create and on PUT; nothing changes', async () => {
      const message = 'The request body must be JSON (Content-Type: application/json).';
      for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
        const create = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(server.token), 'content-type': type }, body: 'actId=my-app' });
        assertEnvelope(create, 415, 'unsupported-media-type', message);
      }
      const id = await createJob(server);
      const put = await raw(server, 'PUT', `/v2/actor-builds/${id}`, { headers: { ...auth(server.token), 'content-type': 'text/plain' }, body: 'SUCCEEDED' });
      assertEnvelope(put, 415, 'unsupported-media-type', message);
      const job = (await (await api(server)(`/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
      assert.equal(job.data.status, 'RUNNING');
      // An empty body of any type is no body (the JS client's abort() sends one).
      const empty = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(server.token), 'content-type': 'text/plain' }, body: '' });
      assert.equal(empty.status, 201);
    });
  });

  describe('garbage compressed bodies are 400, never 500', () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      test(`invalid ${encoding} data on append`, async () => {
        const id = await createJob(server);
        const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
          headers: { ...auth(server.token), 'content-type': 'application/octet-stream', 'content-encoding': encoding },
          body: Buffer.from('this is definitely not compressed data \x00\xff\xfe'.repeat(4), 'latin1'),
        });
        assertEnvelope(res, 400, 'invalid-input');
        assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '');
      });
    }

    test('truncated gzip data on append', async () => {
      const id = await createJob(server);
      const full = gzipSync(Buffer.from('some log line\n'.repeat(100)));
      const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(server.token), 'content-type': 'application/octet-stream', 'content-encoding': 'gzip' },
        body: full.subarray(0, full.length - 10),
      });
      assertEnvelope(res, 400, 'invalid-input');
    });

    test('invalid gzip data on a JSON create', async () => {
      const res = await raw(server, 'POST', '/v2/actor-builds', {
        headers: { ...auth(server.token), 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: '{"actId":"x"}',
      });
      assertEnvelope(res, 400, 'invalid-input');
    });

    test('valid compressed bodies are accepted', async () => {
      const id = await createJob(server);
      const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(server.token), 'content-type': 'application/octet-stream', 'content-encoding': 'br' },
        body: brotliCompressSync(Buffer.from('brotli line\n')),
      });
      assert.equal(res.status, 200);
      const create = await raw(server, 'POST', '/v2/actor-runs', {
        headers: { ...auth(server.token), 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: gzipSync(Buffer.from('{"actId":"zipped"}')),
      });
      assert.equal(create.status, 201, create.body.toString());
      assert.equal((JSON.parse(create.body.toString()) as { data: { actId: string } }).data.actId, 'zipped');
      assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), 'brotli line\n');
    });
  });

  describe('CORS', () => {
    test('OPTIONS preflight is answered with CORS headers', async () => {
      const id = await createJob(server);
      for (const [path, method] of [
        [`/v2/actor-builds/${id}/log`, 'GET'],
        [`/v2/logs/${id}/chunks`, 'POST'],
        [`/v2/actor-runs/${MISSING_ID}`, 'PUT'],
        ['/v2/users/me', 'GET'],
      ]) {
        const res = await raw(server, 'OPTIONS', path!, {
          headers: {
            origin: 'https://viewer.example',
            'access-control-request-method': method!,
            'access-control-request-headers': 'authorization, x-log-offset',
          },
        });
        assert.ok(res.status === 204 || res.status === 200, `${path}: ${res.status}`);
        assert.equal(res.headers['access-control-allow-origin'], '*');
        assert.match(String(res.headers['access-control-allow-methods']), new RegExp(method!));
        assert.match(String(res.headers['access-control-allow-headers']).toLowerCase(), /authorization/);
        assert.ok(res.headers['access-control-max-age']);
        assert.equal(res.body.length, 0);
      }
    });

    test('a bare OPTIONS (no Origin, no preflight headers) is answered, never a non-JSON 400', async () => {
      const id = await createJob(server);
      for (const path of [`/v2/logs/${id}`, `/v2/logs/${id}/chunks`, '/v2/actor-builds']) {
        const res = await raw(server, 'OPTIONS', path);
        assert.ok(res.status === 204 || res.status === 200, `${path}: ${res.status} ${res.body.toString()}`);
        assert.equal(res.headers['access-control-allow-origin'], '*');
        assert.equal(res.body.length, 0);
      }
    });

    test('responses, errors included, carry Access-Control-Allow-Origin and expose the log headers', async () => {
      const id = await createJob(server);
      const ok = await raw(server, 'GET', `/v2/logs/${id}`, { headers: { origin: 'https://viewer.example' } });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers['access-control-allow-origin'], '*');
      assert.match(String(ok.headers['access-control-expose-headers']), /X-Log-Offset/);
      const err = await raw(server, 'GET', `/v2/logs/${MISSING_ID}`, { headers: { origin: 'https://viewer.example' } });
      assertEnvelope(err, 404, 'record-not-found');
      assert.equal(err.headers['access-control-allow-origin'], '*');
    });
  });

  test('no error response carries a stack or internal detail', async () => {
    // A grab bag of odd requests: each must be a clean 4xx envelope.
    const id = await createJob(server);
    const responses = await Promise.all([
      raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(server.token), 'content-type': 'application/json' }, body: '"str"' }),
      raw(server, 'PUT', `/v2/actor-builds/${id}`, { headers: { ...auth(server.token), 'content-type': 'application/json' }, body: '' }),
      raw(server, 'GET', `/v2/actor-builds/${id}?waitForFinish=NaN`),
      raw(server, 'GET', `/v2/logs/${id}?stream=%00`),
    ]);
    for (const res of responses) {
      assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.body.toString()}`);
      const body = JSON.parse(res.body.toString()) as { error: Record<string, unknown> };
      assert.deepEqual(Object.keys(body.error).sort(), ['message', 'type']);
      assert.doesNotMatch(JSON.stringify(body), /at .*\.(ts|js):\d+/);
    }
  });
});
