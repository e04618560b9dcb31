/**
 * A plain append (`POST /v2/logs/:id/chunks` with a Bearer token and a Content-Length) is answered in
 * front of Fastify (src/api/append-fast-path.ts). The same request to `/chunks/` (the route ignores a
 * trailing slash) goes through Fastify's route: the two must not be told apart on the wire, and whatever
 * the fast path declines must get the route's answer. Which path answered is read off Fastify's request
 * log: the fast path writes none.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createUser } from '../src/auth/tokens.js';
import { resolveConfig } from '../src/server/config.js';
import { startServer } from '../src/server/app.js';
import { assertEnvelope } from './helpers/envelope.js';
import { rawRequest, type RawResponse } from './helpers/http.js';
import { scrape, value } from './helpers/metrics.js';
import { TOKEN, api, createJob, finish, tempDir, waitFor, type TestServer } from './helpers/server.js';

/** A test server whose Fastify request log is kept: the URLs of the requests Fastify answered. */
async function startLoggedServer(overrides: Record<string, unknown> = {}): Promise<TestServer & { routed: string[] }> {
  const routed: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (!line) continue;
        const entry = JSON.parse(line) as { msg?: string; req?: { url?: string } };
        if (entry.msg === 'incoming request' && entry.req?.url) routed.push(entry.req.url);
      }
      done();
    },
  });
  const dataDir = tempDir();
  const config = { ...resolveConfig({}, {}), host: '127.0.0.1', port: 0, dataDir, token: TOKEN, ...overrides };
  const server = await startServer(config, { level: 'info', stream });
  return { ...server, token: TOKEN, dataDir, routed, stop: () => server.close() };
}

function post(server: TestServer, id: string, body: string | Buffer, headers: Record<string, string> = {}, slash = false): Promise<RawResponse> {
  return rawRequest(server, 'POST', `/v2/logs/${id}/chunks${slash ? '/' : ''}`, {
    headers: { authorization: `Bearer ${server.token}`, 'content-type': 'application/octet-stream', ...headers },
    body,
  });
}

/** The head without what differs between any two responses (the time). */
function head(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { date: _date, ...rest } = headers;
  return rest;
}

describe('appends in front of Fastify', () => {
  let server: TestServer & { routed: string[] };
  before(async () => {
    server = await startLoggedServer({ rateLimitPerResource: 1_000_000 });
  });
  after(() => server.stop());

  test('the same heads and bodies as the route: appended, retried, refused at a wrong offset, empty, after the finish', async () => {
    const fast = await createJob(server);
    const routed = await createJob(server);
    const both = async (body: string, headers: Record<string, string> = {}) => {
      const before = server.routed.length;
      const a = await post(server, fast, body, headers);
      const b = await post(server, routed, body, headers, true);
      assert.equal(server.routed.length, before + 1, 'only the request to /chunks/ went through Fastify');
      assert.equal(a.status, b.status);
      assert.deepEqual(head(a.headers), head(b.headers));
      assert.equal(a.body.toString(), b.body.toString().replaceAll(routed, fast));
      return a;
    };
    const first = await both('line one\n');
    assert.equal(first.status, 200);
    assert.deepEqual(JSON.parse(first.body.toString()), { data: { id: fast, offset: 0, length: 9, duplicate: false } });
    assert.equal(first.headers['x-log-length'], '9');
    assert.equal((await both('line two\n', { 'x-log-offset': '9' })).status, 200);
    const retry = await both('line two\n', { 'x-log-offset': '9' });
    assert.deepEqual(JSON.parse(retry.body.toString()).data.duplicate, true);
    assertEnvelope(await both('late\n', { 'x-log-offset': '3' }), 400, 'invalid-input', /does not match the log length 18/);
    assert.equal((await both('')).status, 200);
    assert.equal((await finish(server, fast)).status, 200);
    assert.equal((await finish(server, routed)).status, 200);
    assertEnvelope(await both('after\n'), 400, 'invalid-input', /already finished/);
    const log = await api(server)(`/v2/logs/${fast}?raw=1`);
    assert.equal(await log.text(), 'line one\nline two\n');
  });

  test('what the fast path declines gets the route\'s answer, through Fastify', async () => {
    const id = await createJob(server);
    const { token: otherToken } = await createUser(server.store, 'other-user');
    const before = server.routed.length;
    const cases: [string, Promise<RawResponse>, number][] = [
      ['an unknown token', post(server, id, 'x\n', { authorization: 'Bearer not-a-token' }), 401],
      ['another user\'s job', post(server, id, 'x\n', { authorization: `Bearer ${otherToken}` }), 403],
      ['an unknown job', post(server, 'NoSuchJob12345678', 'x\n'), 404],
      ['a malformed X-Log-Offset', post(server, id, 'x\n', { 'x-log-offset': '-1' }), 400],
      ['an unsupported Content-Encoding', post(server, id, 'x\n', { 'content-encoding': 'compress' }), 415],
    ];
    for (const [what, res, status] of cases) assert.equal((await res).status, status, what);
    assert.equal(server.routed.length, before + cases.length, 'each went through Fastify');
    // A gzip body is the route's too, and is appended inflated.
    const gz = await post(server, id, gzipSync('zipped\n'), { 'content-encoding': 'gzip' });
    assert.equal(gz.status, 200);
    assert.equal(server.routed.length, before + cases.length + 1);
    assert.equal(await (await api(server)(`/v2/logs/${id}?raw=1`)).text(), 'zipped\n');
  });

  test('a token whose user is added while the server runs works at once (tokens not found are not remembered)', async () => {
    const id = await createJob(server);
    const token = 'later-token-0123456789abcdefghij';
    assertEnvelope(await post(server, id, 'x\n', { authorization: `Bearer ${token}` }), 401, 'token-not-valid');
    const { user } = await createUser(server.store, 'later-user', token);
    const own = await api(server, token)('/v2/actor-builds', { method: 'POST' });
    assert.equal(own.status, 201);
    const ownId = ((await own.json()) as { data: { id: string; userId: string } }).data;
    assert.equal(ownId.userId, user.id);
    assert.equal((await post(server, ownId.id, 'mine\n', { authorization: `Bearer ${token}` })).status, 200);
    // The token is now known: another user's job is still refused.
    assert.equal((await post(server, id, 'x\n', { authorization: `Bearer ${token}` })).status, 403);
  });

  test('a client that goes away before its body is whole appends nothing, and the server goes on', async () => {
    const id = await createJob(server);
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(`POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\nContent-Length: 100\r\n\r\n0123456789`);
    // Once the server read the head (the fast path then waits for the rest of the body), the client leaves.
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    const res = await post(server, id, 'whole\n', { 'x-log-offset': '0' });
    assert.equal(res.status, 200, 'nothing of the cut body was appended: the log is still empty');
    assert.equal(await (await api(server)(`/v2/logs/${id}?raw=1`)).text(), 'whole\n');
  });

  test('counted in the request metrics by route, as the route counts', async () => {
    const id = await createJob(server);
    const label = { route: '/v2/logs/:id/chunks', method: 'POST', status: '200' };
    const before = value(await scrape(server), 'buildlog_http_requests_total', label);
    for (let i = 0; i < 3; i++) assert.equal((await post(server, id, `${i}\n`)).status, 200);
    await waitFor(async () => value(await scrape(server), 'buildlog_http_requests_total', label) === before + 3, 5000, 'three appends counted');
  });
});

describe('appends in front of Fastify, under a rate limit', () => {
  let server: TestServer & { routed: string[] };
  before(async () => {
    // Four requests a minute per user: the job's creation and three appends.
    server = await startLoggedServer({ rateLimitPerClient: 4 });
  });
  after(() => server.stop());

  test('counted against the same limits: past them the route answers 429', async () => {
    const id = await createJob(server);
    const statuses: number[] = [];
    let last: RawResponse | undefined;
    for (let i = 0; i < 5; i++) {
      last = await post(server, id, `${i}\n`);
      statuses.push(last.status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    assertEnvelope(last!, 429, 'rate-limit-exceeded');
    assert.ok(Number(last!.headers['retry-after']) > 0, 'a 429 says when to retry');
    assert.equal(server.routed.filter((url) => url.includes('/chunks')).length, 2, 'the two refused went through Fastify');
  });
});
