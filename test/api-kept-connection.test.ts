/**
 * A keep-alive connection that polls a finished log is taken from Node's HTTP server after an answer
 * from a cached head, and its next requests are answered without it (src/api/kept-connection.ts). The
 * wire must not tell: the same bytes but the Date, the same counts and limits; and whatever it does not
 * recognise (a token, another route, a body, a bad or partial head, Connection: close) goes back to Node
 * on the same connection and gets the answer it would have got anyway.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { assertEnvelope } from './helpers/envelope.js';
import { scrape, value } from './helpers/metrics.js';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

interface Parsed {
  head: string;
  body: Buffer;
}

/** A raw connection and the responses it received so far, parsed by Content-Length. */
class Connection {
  readonly socket: Socket;
  #received = Buffer.alloc(0);
  readonly closed: Promise<void>;
  /** Numbers (from 0) of the responses that have no body whatever their Content-Length says (to a HEAD). */
  readonly headOnly = new Set<number>();

  constructor(server: TestServer) {
    const { port } = new URL(server.url);
    this.socket = connect(Number(port), '127.0.0.1');
    this.socket.on('data', (d: Buffer) => (this.#received = Buffer.concat([this.#received, d])));
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
  }

  get responses(): Parsed[] {
    const out: Parsed[] = [];
    let at = 0;
    for (;;) {
      const end = this.#received.indexOf('\r\n\r\n', at);
      if (end < 0) return out;
      const head = this.#received.toString('latin1', at, end);
      const length = /\r\ncontent-length: (\d+)/i.exec(head);
      const bodyEnd = end + 4 + (length && !this.headOnly.has(out.length) ? Number(length[1]) : 0);
      if (bodyEnd > this.#received.length) return out;
      out.push({ head, body: this.#received.subarray(end + 4, bodyEnd) });
      at = bodyEnd;
    }
  }

  /** Sends `data` and waits until `count` responses in all have arrived. */
  async send(data: string, count: number): Promise<Parsed[]> {
    this.socket.write(data);
    await waitFor(() => this.responses.length >= count, 5000, `${count} responses`);
    return this.responses;
  }
}

const get = (path: string, fields = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${fields}\r\n`;
/** A head without its Date. */
const undated = (head: string) => head.replace(/\r\nDate: [^\r]+/, '');

describe('kept connections (polling a finished log)', () => {
  let server: TestServer;
  let id: string;
  before(async () => {
    server = await startTestServer({ rateLimitPerResource: 1_000_000 });
    id = await createJob(server);
    assert.equal((await append(server, id, 'polled \x1b[1mbold\x1b[0m\n'.repeat(300))).status, 200);
    assert.equal((await finish(server, id)).status, 200);
  });
  after(() => server.stop());

  for (const [label, path, fields] of [
    ['stripped', `/v2/logs/${'ID'}`, ''],
    ['raw, as a download', `/v2/actor-builds/${'ID'}/log?raw=1&download=1`, ''],
    ['gzip', `/v2/logs/${'ID'}`, 'Accept-Encoding: gzip\r\n'],
  ] as const) {
    test(`${label}: every answer on the connection is the first one's but for the Date`, async () => {
      const c = new Connection(server);
      const request = get(path.replace('ID', id), fields);
      // The first is answered by the fast path, the second from its cached head (and the connection
      // taken after it), the rest without Node's HTTP server.
      for (let n = 1; n <= 5; n++) await c.send(request, n);
      const [first, ...rest] = c.responses;
      assert.match(first!.head, /^HTTP\/1\.1 200 OK\r\n/);
      assert.match(first!.head, /\r\nConnection: keep-alive\r\nKeep-Alive: timeout=72$/);
      for (const r of rest) {
        assert.equal(undated(r.head), undated(first!.head));
        assert.deepEqual(r.body, first!.body);
      }
      const text = fields ? gunzipSync(first!.body).toString() : first!.body.toString();
      assert.equal(text, (path.includes('raw') ? 'polled \x1b[1mbold\x1b[0m\n' : 'polled bold\n').repeat(300));
      c.socket.destroy();
    });
  }

  test('requests sent together are answered in order, and each is counted as the route counts it', async () => {
    const before = await scrape(server);
    const c = new Connection(server);
    await c.send(get(`/v2/logs/${id}`), 1);
    await c.send(get(`/v2/logs/${id}`), 2);
    const all = await c.send(get(`/v2/logs/${id}?raw=1`) + get(`/v2/logs/${id}`) + get(`/v2/logs/${id}?raw=1`), 5);
    const [text, raw] = ['polled bold\n'.repeat(300), 'polled \x1b[1mbold\x1b[0m\n'.repeat(300)];
    assert.deepEqual(all.map((r) => r.body.toString()), [text, text, raw, text, raw]);
    const labels = { route: '/v2/logs/:id', method: 'GET', status: '200' };
    assert.equal(value(await scrape(server), 'buildlog_http_requests_total', labels) - value(before, 'buildlog_http_requests_total', labels), 5);
    c.socket.destroy();
  });

  test('a request it does not answer itself goes to Node on the same connection, which keeps serving', async () => {
    const c = new Connection(server);
    await c.send(get(`/v2/logs/${id}`), 1);
    await c.send(get(`/v2/logs/${id}`), 2);
    // With a token: Fastify's route, the same log.
    let all = await c.send(get(`/v2/logs/${id}`, `Authorization: Bearer ${server.token}\r\n`), 3);
    assert.equal(all[2]!.body.toString(), 'polled bold\n'.repeat(300));
    // Another route.
    all = await c.send(get(`/v2/actor-builds/${id}`), 4);
    assert.equal(JSON.parse(all[3]!.body.toString()).data.status, 'SUCCEEDED');
    // Taken again by the next poll, then a Range and a HEAD: Node's answers.
    await c.send(get(`/v2/logs/${id}`), 5);
    await c.send(get(`/v2/logs/${id}`), 6);
    all = await c.send(get(`/v2/logs/${id}`, 'Range: bytes=0-5\r\n'), 7);
    assert.match(all[6]!.head, /^HTTP\/1\.1 206 Partial Content\r\n/);
    assert.equal(all[6]!.body.toString(), 'polled');
    await c.send(get(`/v2/logs/${id}`), 8);
    await c.send(get(`/v2/logs/${id}`), 9);
    c.headOnly.add(9);
    all = await c.send(`HEAD /v2/logs/${id} HTTP/1.1\r\nHost: x\r\n\r\n`, 10);
    assert.equal(undated(all[9]!.head), undated(all[8]!.head));
    all = await c.send(get(`/v2/logs/${id}`), 11);
    assert.deepEqual(all[10]!.body, all[8]!.body);
    c.socket.destroy();
  });

  test('a head arriving in pieces, and one in the same packet as the request before it, are answered', async () => {
    const c = new Connection(server);
    await c.send(get(`/v2/logs/${id}`), 1);
    await c.send(get(`/v2/logs/${id}`), 2);
    await c.send(get(`/v2/logs/${id}`), 3);
    const request = get(`/v2/logs/${id}?raw=1`);
    c.socket.write(request.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 50));
    c.socket.write(request.slice(10, 30));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const all = await c.send(request.slice(30) + request.slice(0, 25), 4);
    assert.equal(all[3]!.body.toString(), 'polled \x1b[1mbold\x1b[0m\n'.repeat(300));
    const last = await c.send(request.slice(25), 5);
    assert.deepEqual(last[4]!.body, all[3]!.body);
    c.socket.destroy();
  });

  test('a malformed head on a kept connection gets Node\'s 400, Connection: close gets its answer and the close', async () => {
    for (const [bad, status] of [
      [`GET /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n`, /^HTTP\/1\.1 400 Bad Request\r\n/],
      [`GET /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, /^HTTP\/1\.1 200 OK\r\n[^]*\r\nConnection: close$/],
    ] as const) {
      const c = new Connection(server);
      await c.send(get(`/v2/logs/${id}`), 1);
      await c.send(get(`/v2/logs/${id}`), 2);
      await c.send(get(`/v2/logs/${id}`), 3);
      c.socket.write(bad);
      await c.closed;
      const rest = c.responses.length === 4 ? c.responses[3]!.head : '';
      assert.match(rest, status);
    }
  });

  test('a body on a GET: not taken, and the body is not read as a request', async () => {
    const c = new Connection(server);
    await c.send(get(`/v2/logs/${id}`), 1);
    const smuggled = get(`/v2/logs/${id}?raw=1`);
    await c.send(`GET /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`, 2);
    const all = await c.send(get(`/v2/logs/${id}`), 3);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(c.responses.length, 3, 'the body was not answered');
    assert.equal(all[2]!.body.toString(), 'polled bold\n'.repeat(300));
    c.socket.destroy();
  });
});

describe('kept connections: limits and shutdown', () => {
  test('the limits count requests on a kept connection, and the one over them gets the 429', async () => {
    // Per client (this address), 5 a minute: the window starts with the first request, so all of these are in it.
    const server = await startTestServer({ rateLimitPerClient: 5 });
    try {
      const id = await createJob(server);
      await append(server, id, 'limited\n');
      await finish(server, id);
      const c = new Connection(server);
      await c.send(get(`/v2/logs/${id}`), 1);
      await c.send(get(`/v2/logs/${id}`), 2);
      const all = await c.send(get(`/v2/logs/${id}`).repeat(5), 7);
      assert.deepEqual(all.map((r) => Number(r.head.slice(9, 12))), [200, 200, 200, 200, 200, 429, 429]);
      assertEnvelope({ status: 429, headers: { 'content-type': 'application/json; charset=utf-8' }, body: all[5]!.body }, 429, 'rate-limit-exceeded');
      c.socket.destroy();
    } finally {
      await server.stop();
    }
  });

  test('a shutdown closes an idle kept connection at once', async () => {
    const server = await startTestServer();
    const id = await createJob(server);
    await append(server, id, 'bye\n');
    await finish(server, id);
    const c = new Connection(server);
    for (let n = 1; n <= 3; n++) await c.send(get(`/v2/logs/${id}`), n);
    const started = performance.now();
    await server.stop();
    await c.closed;
    assert.ok(performance.now() - started < 2000, `closed after ${Math.round(performance.now() - started)} ms (the grace is 3 s)`);
  });
});
