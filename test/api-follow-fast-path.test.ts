/**
 * `stream=1` without a token is answered in front of Fastify (src/api/fast-path.ts), opened by the
 * follower's own first read. The same request with `?token=` goes through Fastify's route: the two must
 * not be told apart on the wire, and whatever the fast path declines (unknown job, wrong kind, finished
 * job, a store fault) must get the route's answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { assertEnvelope } from './helpers/envelope.js';
import { rawRequest } from './helpers/http.js';
import { scrape, value } from './helpers/metrics.js';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Followed {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  ended: Promise<void>;
  /** The reader goes away (its connection is reset). */
  leave(): void;
}

/** Opens a follow and resolves once its head arrived; `body` grows until the response ends. */
function follow(server: TestServer, path: string): Promise<Followed> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, agent: false }, (res) => {
      const out: Followed = {
        status: res.statusCode!,
        headers: res.headers,
        body: Buffer.alloc(0),
        ended: new Promise((r) => res.on('end', r)),
        leave: () => req.destroy(),
      };
      res.on('data', (c: Buffer) => (out.body = Buffer.concat([out.body, c])));
      res.on('error', () => undefined);
      resolve(out);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The head without what differs between any two responses (the time). */
function head(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { date: _date, ...rest } = headers;
  return rest;
}

describe('stream=1 without a token (the fast path)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ retentionChars: 100 });
  });
  after(() => server.stop());

  for (const query of ['stream=1', 'stream=1&raw=1']) {
    test(`${query}: the same head and bytes as the route, from the stored bytes to the end of the job`, async () => {
      const id = await createJob(server);
      assert.equal((await append(server, id, 'x'.repeat(120) + '\n\x1b[1mbold\x1b[0m\n')).status, 200);
      const fast = await follow(server, `/v2/actor-builds/${id}/log?${query}`);
      const routed = await follow(server, `/v2/actor-builds/${id}/log?${query}&token=${server.token}`);
      assert.equal(fast.status, 200);
      assert.deepEqual(head(fast.headers), head(routed.headers));
      assert.equal(fast.headers['x-log-offset'], '34', 'the log keeps its last 100 characters');
      await waitFor(() => fast.body.length > 0 && fast.body.length === routed.body.length, 5000, 'the stored bytes');
      assert.equal((await append(server, id, 'more \x1b[31mred\x1b[0m\n')).status, 200);
      await waitFor(() => fast.body.toString().includes('red'), 5000, 'the live append');
      assert.equal((await finish(server, id)).status, 200);
      await Promise.all([fast.ended, routed.ended]);
      assert.deepEqual(fast.body, routed.body);
      const text = fast.body.toString();
      if (query.includes('raw')) {
        assert.ok(text.startsWith('x'.repeat(86) + '\n\x1b[1mbold'), 'raw: the retained bytes verbatim, no notice');
      } else {
        assert.match(text, /^\[buildlog\] 34 bytes at the start of this log were dropped: it keeps the last 100 characters\.\n/);
        assert.ok(text.endsWith('x'.repeat(86) + '\nbold\nmore red\n'), 'stripped, after the notice');
      }
    });
  }

  test('an unknown job, a build asked for as a run: the route\'s 404, the same on both paths', async () => {
    const id = await createJob(server);
    for (const path of [`/v2/actor-runs/${id}/log?stream=1`, `/v2/actor-builds/${newId()}/log?stream=1`, `/v2/logs/${newId()}?stream=1`]) {
      const fast = await rawRequest(server, 'GET', path);
      const routed = await rawRequest(server, 'GET', `${path}&token=${server.token}`);
      assertEnvelope(fast, 404, 'record-not-found');
      assert.deepEqual(fast.body, routed.body);
    }
  });

  /** A connection to the server and everything it received, as text. */
  async function connection() {
    const { port } = new URL(server.url);
    const socket = connect(Number(port), '127.0.0.1');
    const c = { socket, received: '', closed: new Promise<void>((resolve) => socket.once('close', () => resolve())) };
    socket.on('data', (d: Buffer) => (c.received += d.toString('latin1')));
    return c;
  }

  for (const pipelined of [false, true]) {
    test(`after the last chunk the connection serves the next request${pipelined ? ', also one sent in the same packet as the follow' : ''}`, async () => {
      const id = await createJob(server);
      const before = await scrape(server);
      const c = await connection();
      const next = `GET /v2/actor-builds/${id} HTTP/1.1\r\nHost: x\r\n\r\n`;
      c.socket.write(`GET /v2/actor-builds/${id}/log?stream=1 HTTP/1.1\r\nHost: x\r\n\r\n${pipelined ? next : ''}`);
      await waitFor(() => c.received.includes('\r\n\r\n'), 5000, 'the head');
      // Sent while the follow is open: answered after it.
      if (!pipelined) c.socket.write(next);
      assert.equal((await append(server, id, 'one line\n')).status, 200);
      await waitFor(() => c.received.includes('one line'), 5000, 'the append');
      assert.equal((await finish(server, id)).status, 200);
      // The job as it was when that request arrived (RUNNING if it came with the follow).
      await waitFor(() => /\r\n0\r\n\r\nHTTP\/1\.1 200 OK\r\n[^]*\r\n\r\n\{"data":\{[^]*"status":"(RUNNING|SUCCEEDED)"[^]*\}$/.test(c.received), 5000, 'the answer to the next request');
      const head = c.received.slice(0, c.received.indexOf('\r\n\r\n'));
      assert.match(head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(head, /\r\nConnection: keep-alive\r\n/);
      assert.match(head, /\r\nTransfer-Encoding: chunked$/);
      const rest = c.received.slice(head.length + 4);
      assert.ok(rest.startsWith('9\r\none line\n\r\n0\r\n\r\nHTTP/1.1 200 OK\r\n'), `one chunk, the last chunk, the next response: ${JSON.stringify(rest.slice(0, 60))}`);
      // And one more after that, on the same connection.
      const third = c.received.length;
      c.socket.write(`GET /v2/actor-builds/${id}/log HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      await c.closed;
      assert.match(c.received.slice(third), /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\none line\n$/);
      // The follow and the plain GET, as the route's hook counts them.
      const labels = { route: '/v2/actor-builds/:id/log', method: 'GET', status: '200' };
      assert.equal(value(await scrape(server), 'buildlog_http_requests_total', labels) - value(before, 'buildlog_http_requests_total', labels), 2);
    });
  }

  test('a follower written to its socket holds neither the request nor the response it came with', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const id = await createJob(server);
    const seen: WeakRef<object>[] = [];
    const onRequest = (req: object, res: object) => seen.push(new WeakRef(req), new WeakRef(res));
    server.app.server.on('request', onRequest);
    const followed = await follow(server, `/v2/actor-builds/${id}/log?stream=1`);
    server.app.server.off('request', onRequest);
    assert.equal(followed.status, 200);
    assert.equal(seen.length, 2);
    // WeakRefs let go of their targets only after the job that made them; a few rounds for the parser's deferred free.
    for (let i = 0; i < 10 && seen.some((r) => r.deref()); i++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    }
    assert.deepEqual(seen.map((r) => r.deref() === undefined), [true, true], 'request and response collected while the follow is open');
    assert.equal((await append(server, id, 'still followed\n')).status, 200);
    await waitFor(() => followed.body.toString() === 'still followed\n', 5000, 'the append');
    assert.equal((await finish(server, id)).status, 200);
    await followed.ended;
  });

  test('a job that finished: the whole log at once, as from the route', async () => {
    const id = await createJob(server, 'run');
    await append(server, id, 'all of it\n');
    await finish(server, id, 'SUCCEEDED', 'run');
    const fast = await rawRequest(server, 'GET', `/v2/actor-runs/${id}/log?stream=1`);
    const routed = await rawRequest(server, 'GET', `/v2/actor-runs/${id}/log?stream=1&token=${server.token}`);
    assert.equal(fast.status, 200);
    assert.equal(fast.body.toString(), 'all of it\n');
    assert.deepEqual(head(fast.headers), head(routed.headers));
  });
});

describe('stream slots with followers on the fast path', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxStreamsPerClient: 2 });
  });
  after(() => server.stop());

  test('a HEAD holds no slot; a reader that goes away gives its slot back; over the limit is 429', async () => {
    const id = await createJob(server);
    for (let i = 0; i < 3; i++) {
      const head = await rawRequest(server, 'HEAD', `/v2/actor-builds/${id}/log?stream=1`);
      assert.equal(head.status, 200, `HEAD ${i + 1}: answered, its slot given back`);
    }
    const path = `/v2/actor-builds/${id}/log?stream=1`;
    const first = await follow(server, path);
    const second = await follow(server, path);
    assert.deepEqual([first.status, second.status], [200, 200]);
    assertEnvelope(await rawRequest(server, 'GET', path), 429, 'rate-limit-exceeded');
    first.leave();
    let third: Followed | null = null;
    await waitFor(async () => {
      const f = await follow(server, path);
      if (f.status === 200) third = f;
      else f.leave();
      return third !== null;
    }, 5000, 'the slot of the reader that left');
    assert.equal((await finish(server, id)).status, 200);
    await Promise.all([second.ended, third!.ended]);
  });
});

describe('stream=1 without a token when the store fails its first read (PostgreSQL)', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const db = new pg.Client({ connectionString: DATABASE_URL });
  let server: TestServer;
  before(async () => {
    await db.connect();
    server = await startTestServer({ databaseUrl: DATABASE_URL, databaseSchema: schema });
  });
  after(async () => {
    await server.stop();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  });

  test('the route answers (an error in the envelope), the server stays up, and follows work once the store is back', async () => {
    const id = await createJob(server);
    await append(server, id, 'line\n');
    await db.query(`ALTER TABLE ${schema}.jobs RENAME TO jobs_away`);
    try {
      const res = await rawRequest(server, 'GET', `/v2/actor-builds/${id}/log?stream=1`);
      assert.ok(res.status >= 500, `a server-side error, not ${res.status}`);
      assertEnvelope(res, res.status, String((JSON.parse(res.body.toString()) as { error: { type: string } }).error.type));
    } finally {
      await db.query(`ALTER TABLE ${schema}.jobs_away RENAME TO jobs`);
    }
    const again = await follow(server, `/v2/actor-builds/${id}/log?stream=1`);
    assert.equal(again.status, 200);
    await waitFor(() => again.body.toString() === 'line\n', 5000, 'the stored line');
    await finish(server, id);
    await again.ended;
  });
});
