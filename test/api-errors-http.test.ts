// The API's refusals at the HTTP level, in the Apify envelope: 405 with Allow, 413, 415, bodies that do
// not decompress, CORS on errors too, and no stack in any error (test/api-errors.test.ts: 400 to 404).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { assertEnvelope, assertFetchEnvelope } from './helpers/envelope.js';
import { rawRequest as raw, type RawResponse } from './helpers/http.js';
import { api, append, createJob, startTestServer, type TestServer } from './helpers/server.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const MISSING_ID = 'AAAAAAAAAAAAAAAAA';

describe('API errors', () => {
  let server: TestServer;

  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
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
