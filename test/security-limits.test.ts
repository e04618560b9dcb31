// How much anyone may ask of the server: rate limits (and apify-client's retries through them), the cap on open
// streams, quotas, body limits checked while reading (also after inflating), 415, and half-open connections.
import assert from 'node:assert/strict';
import { Agent, request, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import {
  brotliDecompressSync,
  constants,
  crc32,
  createBrotliCompress,
  createDeflateRaw,
  createGunzip,
  deflateSync,
  gunzipSync,
  gzipSync,
  inflateSync,
} from 'node:zlib';
import { ApifyClient } from 'apify-client';
import { createUser } from '../src/auth/tokens.js';
import { rawRequest, type RawOptions, type RawResponse } from './helpers/http.js';
import { api, append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';


const agent = new Agent({ keepAlive: true, maxSockets: 32 });
after(() => agent.destroy());
/** Requests of this file share one keep-alive agent (bursts would otherwise exhaust ports). */
const raw = (server: { url: string }, method: string, path: string, options: RawOptions = {}): Promise<RawResponse> =>
  rawRequest(server, method, path, { agent, ...options });


function assertEnvelope(res: RawResponse, status: number, type: string, message?: RegExp): string {
  assert.equal(res.status, status, `status (body: ${res.body.toString().slice(0, 300)})`);
  assert.match(String(res.headers['content-type']), /^application\/json(;|$)/);
  const body = JSON.parse(res.body.toString('utf8')) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.equal(body.error.type, type);
  if (message) assert.match(body.error.message, message);
  return body.error.message;
}

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `n` requests at once. */
const burst = (server: TestServer, path: string, n: number, headers: Record<string, string> = {}) =>
  Promise.all(Array.from({ length: n }, () => raw(server, 'GET', path, { headers })));

describe('per-resource rate limit (Apify default: 60 requests/s per job)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  /** A finished build with a known log. */
  async function logJob(text: string): Promise<string> {
    const id = await createJob(server);
    assert.equal((await append(server, id, text)).status, 200);
    assert.equal((await finish(server, id)).status, 200);
    return id;
  }

  test('a burst on one log gets 429 rate-limit-exceeded with Retry-After, and X-RateLimit-Limit: 60 on every answer', async () => {
    const id = await logJob('burst me\n');
    let limited: RawResponse | undefined;
    const all: RawResponse[] = [];
    // 60 per second: a burst of 150 at once cannot all fit in one window; a busy machine may need a few rounds.
    for (let round = 0; round < 20 && !limited; round++) {
      const responses = await burst(server, `/v2/logs/${id}`, 150);
      all.push(...responses);
      limited = responses.find((r) => r.status === 429);
    }
    assert.ok(limited, 'a 429 appeared');
    assertEnvelope(limited, 429, 'rate-limit-exceeded', /rate limit/);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${limited.headers['retry-after']}`);
    for (const res of all) {
      assert.ok(res.status === 200 || res.status === 429, `only 200 or 429: ${res.status}`);
      assert.equal(res.headers['x-ratelimit-limit'], '60');
      if (res.status === 200) assert.equal(res.body.toString(), 'burst me\n');
    }
    // The limit is per resource: another job's log is not affected.
    const other = await logJob('other\n');
    assert.equal((await raw(server, 'GET', `/v2/logs/${other}`)).status, 200);
  });

  test('apify-client still gets the log while the burst is on, thanks to its retries', async () => {
    // Its first attempt is refused when the burst has used up the current window; it must retry until one
    // passes. A window may roll over just before that attempt (then no retry was needed), so up to 5 tries.
    let retried = false;
    for (let scenario = 0; scenario < 5 && !retried; scenario++) {
      const text = `log number ${scenario}\n`;
      const id = await logJob(text);
      let attempts = 0;
      const client = new ApifyClient({
        baseUrl: server.url,
        token: server.token,
        minDelayBetweenRetriesMillis: 100,
        requestInterceptors: [
          (config) => {
            attempts++;
            return config;
          },
        ],
      });
      let stop = false;
      let limitedDuringBurst = 0;
      const hammer = (async () => {
        while (!stop) {
          for (const r of await burst(server, `/v2/logs/${id}`, 20)) if (r.status === 429) limitedDuringBurst++;
        }
      })();
      await waitFor(() => limitedDuringBurst > 0, 20_000, 'the burst to hit the limit');
      // The burst goes on for 1.5 s more while the client reads.
      const burstEnds = sleep(1500).then(() => (stop = true));
      const log = await client.log(id).get();
      await burstEnds;
      await hammer;
      assert.equal(log, text);
      assert.ok(limitedDuringBurst > 0);
      retried = attempts >= 2;
    }
    assert.ok(retried, 'in at least one scenario the client was refused first and succeeded on a retry');
  });
});

describe('per-client rate limit (per user with a token, per address without)', () => {
  const LIMIT = 30;
  let server: TestServer;
  let alice: { token: string };
  let bob: { token: string };
  before(async () => {
    server = await startTestServer({ rateLimitPerClient: LIMIT, rateLimitPerResource: 10_000 });
    alice = await createUser(server.store, 'alice');
    bob = await createUser(server.store, 'bob');
  });
  after(() => server.stop());

  test('each user has their own budget; anonymous requests share the address budget; unknown tokens count against the address', async () => {
    const me = (token?: string) => raw(server, 'GET', '/v2/users/me', { headers: token ? auth(token) : {} });
    // Alice uses her whole budget.
    for (let i = 0; i < LIMIT; i++) {
      const res = await me(alice.token);
      assert.equal(res.status, 200, `request ${i + 1} of ${LIMIT}`);
      assert.equal(res.headers['x-ratelimit-limit'], String(LIMIT));
    }
    const over = await me(alice.token);
    assertEnvelope(over, 429, 'rate-limit-exceeded');
    const retryAfter = Number(over.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} within the one-minute window`);
    // The same address with another token, and without one, is not affected: the budget is Alice's.
    assert.equal((await me(bob.token)).status, 200);
    const id = await createJob(server);
    assert.equal((await raw(server, 'GET', `/v2/logs/${id}`)).status, 200);
    // Anonymous requests (and made-up tokens: guessing tokens is throttled too) share the address's budget.
    let anonymous = 1;
    for (; anonymous < LIMIT; anonymous++) {
      const res =
        anonymous % 2 === 0
          ? await raw(server, 'GET', `/v2/logs/${id}`)
          : await raw(server, 'GET', '/v2/users/me', { headers: auth(`made-up-token-${anonymous}`) });
      assert.equal(res.status, anonymous % 2 === 0 ? 200 : 401, `anonymous request ${anonymous + 1}`);
    }
    assertEnvelope(await raw(server, 'GET', `/v2/logs/${id}`), 429, 'rate-limit-exceeded');
    assertEnvelope(await raw(server, 'GET', '/v2/users/me', { headers: auth('yet-another-made-up-token') }), 429, 'rate-limit-exceeded');
    // Bob still has his own budget, Alice is still over hers.
    assert.equal((await me(bob.token)).status, 200);
    assert.equal((await me(alice.token)).status, 429);
  });
});

describe('concurrent streams per client', () => {
  const MAX = 2;
  let server: TestServer;
  let other: { token: string };
  const open: ClientRequest[] = [];
  before(async () => {
    server = await startTestServer({ maxStreamsPerClient: MAX, rateLimitPerResource: 10_000 });
    other = await createUser(server.store, 'other');
  });
  after(async () => {
    for (const req of open) req.destroy();
    await server.stop();
  });

  /** Opens `?stream=1` on a log and resolves at its head: a 200 stays open (kept in `open`), anything else is read whole. */
  function openStream(id: string, token?: string): Promise<{ req: ClientRequest; res: IncomingMessage; error?: RawResponse }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/v2/logs/${id}?stream=1`, { headers: token ? auth(token) : {} }, (res) => {
        if (res.statusCode === 200) {
          open.push(req);
          res.on('data', () => undefined);
          res.on('error', () => undefined);
          return resolve({ req, res });
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ req, res, error: { status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) } }));
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
  }

  test('the stream after the cap is 429; closing one frees a slot; other clients have their own slots', async () => {
    const id = await createJob(server);
    assert.equal((await append(server, id, 'running\n')).status, 200);
    const first = await openStream(id, server.token);
    const second = await openStream(id, server.token);
    assert.equal(first.error, undefined);
    assert.equal(second.error, undefined);
    const third = await openStream(id, server.token);
    assert.ok(third.error, 'the third stream is refused');
    assertEnvelope(third.error, 429, 'rate-limit-exceeded', new RegExp(`concurrent log streams \\(limit ${MAX} per client\\)`));
    assert.ok(Number(third.error.headers['retry-after']) >= 1);

    // Reads that are not streams are not capped, nor is `stream` on a finished job (it is a plain read).
    assert.equal((await raw(server, 'GET', `/v2/logs/${id}`, { headers: auth(server.token) })).status, 200);
    const done = await createJob(server);
    await finish(server, done);
    assert.equal((await raw(server, 'GET', `/v2/logs/${done}?stream=1`, { headers: auth(server.token) })).status, 200);
    // Other clients: another user, and anonymous readers (counted by address).
    const others = [await openStream(id, other.token), await openStream(id), await openStream(id)];
    assert.deepEqual(others.map((s) => s.error?.status), [undefined, undefined, undefined]);
    assert.equal((await openStream(id)).error?.status, 429, 'the address has its own cap');

    // Closing a stream gives its slot back (once the server has seen the close).
    first.req.destroy();
    let again: Awaited<ReturnType<typeof openStream>> | undefined;
    await waitFor(
      async () => {
        again = await openStream(id, server.token);
        if (again.error) await sleep(50);
        return !again.error;
      },
      10_000,
      'a freed slot',
    );
    assert.equal((await openStream(id, server.token)).error?.status, 429, 'and only that one');

    // Streams end when the job finishes, and their slots are freed.
    const ended = [second, again!].map((s) => new Promise((r) => s.res.on('end', r)));
    await finish(server, id);
    await Promise.all(ended);
    const next = await createJob(server);
    await waitFor(
      async () => {
        const s = await openStream(next, server.token);
        if (s.error) await sleep(50);
        else s.req.destroy();
        return !s.error;
      },
      10_000,
      'slots freed by the finished job',
    );
  });
});

describe('quotas (maxJobsPerUser, maxBytesPerUser)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxJobsPerUser: 3, maxBytesPerUser: 100 });
  });
  after(() => server.stop());

  test('the job after maxJobsPerUser is 403 permission-denied with a clear message; other users are not affected', async () => {
    const { token } = await createUser(server.store, 'jobs-quota');
    const create = (kind: string) =>
      raw(server, 'POST', `/v2/actor-${kind}s`, { headers: { ...auth(token), 'content-type': 'application/json' }, body: '{}' });
    for (const kind of ['build', 'run', 'build']) assert.equal((await create(kind)).status, 201);
    for (const kind of ['build', 'run']) {
      assertEnvelope(await create(kind), 403, 'permission-denied', /User "jobs-quota" has reached the limit of 3 jobs\./);
    }
    const other = await createUser(server.store, 'jobs-quota-other');
    const res = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(other.token), 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 201);
  });

  test('appends past maxBytesPerUser are 403 permission-denied and store nothing', async () => {
    const { token } = await createUser(server.store, 'bytes-quota');
    const jobOf = async () => {
      const res = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(token), 'content-type': 'application/json' }, body: '{}' });
      return JSON.parse(res.body.toString()).data.id as string;
    };
    const [a, b] = [await jobOf(), await jobOf()];
    const put = (id: string, data: Buffer | string, encoding?: string) =>
      raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(token), 'content-type': 'text/plain', ...(encoding ? { 'content-encoding': encoding } : {}) },
        body: data,
      });
    assert.equal((await put(a, 'x'.repeat(60))).status, 200);
    assertEnvelope(await put(b, 'y'.repeat(50)), 403, 'permission-denied', /reached the limit of 100 log bytes/);
    // Compressed bodies count their inflated bytes.
    assertEnvelope(await put(b, gzipSync(Buffer.alloc(41, 'z')), 'gzip'), 403, 'permission-denied', /limit of 100 log bytes/);
    assert.equal((await put(b, 'y'.repeat(40))).status, 200, 'exactly at the quota is fine');
    assertEnvelope(await put(a, 'z'), 403, 'permission-denied');
    assert.equal(await (await api(server)(`/v2/logs/${a}`)).text(), 'x'.repeat(60));
    assert.equal(await (await api(server)(`/v2/logs/${b}`)).text(), 'y'.repeat(40));
  });
});

/** A raw connection that records everything it receives and when it closes. */
function rawConnection(server: { url: string }) {
  const { hostname, port } = new URL(server.url);
  const socket = connect(Number(port), hostname);
  const state = { received: '', closed: false, socket };
  socket.on('data', (d) => (state.received += d.toString('latin1')));
  socket.on('error', () => undefined);
  socket.on('close', () => (state.closed = true));
  return state;
}

/** Parses the one HTTP response in `text` (status, headers, body), as the server wrote it. */
function parseResponse(text: string): RawResponse {
  const end = text.indexOf('\r\n\r\n');
  assert.ok(end > 0, `a complete head: ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: IncomingHttpHeaders = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine!)?.[1]), headers, body: Buffer.from(text.slice(end + 4), 'latin1') };
}

describe('413: request bodies are bounded while they are read', () => {
  let server: TestServer;
  let small: TestServer;
  const SMALL = 64 * 1024;
  before(async () => {
    server = await startTestServer(); // the default limit, 8 MiB
    small = await startTestServer({ maxBodyBytes: SMALL });
  });
  after(async () => {
    await server.stop();
    await small.stop();
  });

  test('Content-Length: 1 GiB is refused after a few KiB: the 413 arrives before the rest is sent, and the connection closes', async () => {
    const id = await createJob(server);
    const conn = rawConnection(server);
    conn.socket.write(
      `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\n` +
        `Content-Type: text/plain\r\nContent-Length: ${1024 ** 3}\r\n\r\n`,
    );
    conn.socket.write('x'.repeat(4096));
    await waitFor(() => conn.received.includes('\r\n\r\n') || conn.closed, 10_000, 'the answer');
    await waitFor(() => conn.closed, 10_000, 'the server to close the connection');
    const res = parseResponse(conn.received);
    assertEnvelope(res, 413, 'request-too-large', /limit: 8388608 bytes/);
    assert.equal(res.headers.connection, 'close');
    assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '');
  });

  test('a chunked body that streams past the limit gets 413 while it is still being sent, and the connection is closed', async () => {
    const id = await createJob(small);
    const conn = rawConnection(small);
    conn.socket.write(
      `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${small.token}\r\n` +
        `Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n`,
    );
    const chunk = `1000\r\n${'c'.repeat(0x1000)}\r\n`;
    let sent = 0;
    // Sends 4 KiB chunks, one at a time, until the server answers; never the final 0-length chunk.
    while (!conn.received && !conn.closed && sent < 64 * 1024 * 1024) {
      await new Promise<void>((resolve) => conn.socket.write(chunk, () => resolve()));
      sent += 0x1000;
      if (sent % (64 * 1024) === 0) await sleep(1);
    }
    await waitFor(() => conn.closed, 10_000, 'the server to close the connection');
    assert.ok(sent < 64 * 1024 * 1024, `answered before 64 MiB were sent (sent ${sent})`);
    assertEnvelope(parseResponse(conn.received), 413, 'request-too-large', new RegExp(`limit: ${SMALL} bytes`));
    assert.equal(await (await api(small)(`/v2/logs/${id}`)).text(), '');
  });
});

describe('415 unsupported-content-encoding on every endpoint that takes a body', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  for (const encoding of ['x-compress', 'zstd', 'gzip, deflate', 'br;q=1', 'chunked', 'aes128gcm']) {
    test(`Content-Encoding: ${encoding}`, async () => {
      const build = await createJob(server);
      const run = await createJob(server, 'run');
      const cases: [string, string, string][] = [
        ['POST', `/v2/logs/${build}/chunks`, 'text/plain'],
        ['POST', '/v2/actor-runs', 'application/json'],
        ['PUT', `/v2/actor-builds/${build}`, 'application/json'],
        ['PUT', `/v2/actor-runs/${run}`, 'application/json'],
        ['POST', `/v2/actor-runs/${run}/abort`, 'application/json'],
      ];
      for (const [method, path, type] of cases) {
        const res = await raw(server, method, path, {
          headers: { ...auth(server.token), 'content-type': type, 'content-encoding': encoding },
          body: type === 'text/plain' ? 'data\n' : '{"status":"SUCCEEDED"}',
        });
        assertEnvelope(res, 415, 'unsupported-content-encoding', /is not supported/);
      }
      // Nothing happened.
      assert.equal(await (await api(server)(`/v2/logs/${build}`)).text(), '');
      for (const id of [build, run]) assert.equal((await server.store.getJob(id))?.status, 'RUNNING');
    });
  }

  test('the encoding names are case-insensitive, and identity is no encoding', async () => {
    const id = await createJob(server);
    for (const [encoding, body] of [
      ['GZIP', gzipSync('one\n')],
      ['Deflate', deflateSync('two\n')],
      ['identity', Buffer.from('three\n')],
    ] as const) {
      const res = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(server.token), 'content-type': 'text/plain', 'content-encoding': encoding },
        body,
      });
      assert.equal(res.status, 200, `${encoding}: ${res.body.toString()}`);
    }
    assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), 'one\ntwo\nthree\n');
  });
});

/**
 * A gzip member that inflates to `copies` MiB of zeros, built without compressing them all: one raw deflate
 * block sequence for 1 MiB (ended by a full flush, so it refers to nothing before it) repeated, then the final
 * block and the real CRC-32 and size. About 1 KiB per MiB inflated.
 */
async function gzipBomb(copies: number): Promise<Buffer> {
  const deflate = createDeflateRaw({ level: 9 });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const mib = Buffer.alloc(1024 * 1024);
  deflate.write(mib);
  await new Promise<void>((r) => deflate.flush(constants.Z_FULL_FLUSH, () => r()));
  const block = Buffer.concat(out.splice(0));
  const ended = new Promise((r) => deflate.once('end', r));
  deflate.end();
  await ended;
  const final = Buffer.concat(out);
  let crc = 0;
  for (let i = 0; i < copies; i++) crc = crc32(mib, crc);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE((copies * mib.length) % 2 ** 32, 4);
  const header = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
  return Buffer.concat([header, ...Array.from({ length: copies }, () => block), final, trailer]);
}

/** The same deflate blocks in the zlib wrapper (Content-Encoding: deflate): the Adler-32 of n zero bytes is (n mod 65521) << 16 | 1. */
function deflateBomb(gzip: Buffer, copies: number): Buffer {
  const size = copies * 1024 * 1024;
  const adler = Buffer.alloc(4);
  adler.writeUInt32BE((((size % 65521) << 16) | 1) >>> 0);
  return Buffer.concat([Buffer.from([0x78, 0x9c]), gzip.subarray(10, gzip.length - 8), adler]);
}

/** `size` bytes of zeros compressed with brotli, streamed (quality 1 is fast and still over 5000:1). */
async function brotliBomb(size: number): Promise<Buffer> {
  const br = createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 1 } });
  const out: Buffer[] = [];
  br.on('data', (c: Buffer) => out.push(c));
  const mib = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < size / mib.length; i++) if (!br.write(mib)) await new Promise((r) => br.once('drain', r));
  const ended = new Promise((r) => br.once('end', r));
  br.end();
  await ended;
  return Buffer.concat(out);
}

describe('zip bombs: 413, with memory bounded', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(); // in-process, so that its memory can be watched; default 8 MiB limit
  });
  after(() => server.stop());

  test('the bombs are what they claim (checked on small ones)', async () => {
    assert.ok(gunzipSync(await gzipBomb(3)).equals(Buffer.alloc(3 * 1024 * 1024)));
    assert.ok(inflateSync(deflateBomb(await gzipBomb(2), 2)).equals(Buffer.alloc(2 * 1024 * 1024)));
    assert.ok(brotliDecompressSync(await brotliBomb(2 * 1024 * 1024)).equals(Buffer.alloc(2 * 1024 * 1024)));
  });

  test('the rest of a refused bomb is not inflated: the request costs a fraction of inflating it all', async (t) => {
    const bomb = await gzipBomb(1024);
    const cpuSince = (start: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(start);
      return (used.user + used.system) / 1000;
    };
    // What inflating the whole bomb costs on this machine, now.
    const start = process.cpuUsage();
    await pipeline(Readable.from([bomb]), createGunzip({ chunkSize: 1024 * 1024 }), new Writable({ write: (_chunk, _encoding, done) => done() }));
    const reference = cpuSince(start);
    const id = await createJob(server);
    const before = process.cpuUsage();
    // A client that sends the whole body whatever the answer; measured until a while after the server has
    // closed the connection, so that whatever it still does with the rest of the body counts.
    const conn = rawConnection(server);
    conn.socket.write(
      `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\n` +
        `Content-Type: text/plain\r\nContent-Encoding: gzip\r\nContent-Length: ${bomb.length}\r\n\r\n`,
    );
    conn.socket.write(bomb);
    await waitFor(() => conn.closed, 30_000, 'the server to close the connection');
    await sleep(1500);
    const used = cpuSince(before);
    assertEnvelope(parseResponse(conn.received), 413, 'request-too-large');
    t.diagnostic(`inflating it all: ${Math.round(reference)} ms of CPU; the refused request: ${Math.round(used)} ms`);
    assert.ok(used < reference / 2, `the request used ${Math.round(used)} ms of CPU, inflating it all ${Math.round(reference)} ms`);
  });

  test('a gzip body of ~1 MiB that inflates to 1 GiB (and a brotli one to 4 GiB) is 413; memory stays bounded', async (t) => {
    const gzip = await gzipBomb(1024);
    assert.ok(gzip.length < 2 * 1024 * 1024, `the gzip bomb is small: ${gzip.length}`);
    const br = await brotliBomb(4 * 1024 ** 3);
    assert.ok(br.length < 2 * 1024 * 1024, `the brotli bomb is small: ${br.length}`);
    const id = await createJob(server);

    const used = () => {
      const m = process.memoryUsage();
      return m.heapUsed + m.external + m.arrayBuffers;
    };
    const baseline = used();
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, used())), 5);
    try {
      // Three of each at once: unbounded inflating would need 15 GiB.
      const send = (body: Buffer, encoding: string) =>
        new Promise<RawResponse>((resolve, reject) => {
          let answered = false;
          const req = request(
            `${server.url}/v2/logs/${id}/chunks`,
            { method: 'POST', headers: { ...auth(server.token), 'content-type': 'text/plain', 'content-encoding': encoding } },
            (res) => {
              answered = true;
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
            },
          );
          // The server may answer and close before the whole body is written.
          req.on('error', (err) => answered || reject(err));
          req.end(body);
        });
      const responses = await Promise.all([
        ...Array.from({ length: 3 }, () => send(gzip, 'gzip')),
        ...Array.from({ length: 3 }, () => send(br, 'br')),
      ]);
      for (const res of responses) assertEnvelope(res, 413, 'request-too-large', /limit: 8388608 bytes/);
    } finally {
      clearInterval(sampler);
    }
    const growth = peak - baseline;
    t.diagnostic(`heap + external memory grew by ${Math.round(growth / 1024 / 1024)} MiB at most`);
    assert.ok(growth < 512 * 1024 * 1024, `memory grew by ${Math.round(growth / 1024 / 1024)} MiB at most`);
    assert.equal(await (await api(server)(`/v2/logs/${id}`)).text(), '', 'nothing was stored');
    // The server is fine, and a compressed body within the limit is accepted.
    const ok = await raw(server, 'POST', `/v2/logs/${id}/chunks`, {
      headers: { ...auth(server.token), 'content-type': 'text/plain', 'content-encoding': 'gzip' },
      body: gzipSync('after the bombs\n'),
    });
    assert.equal(ok.status, 200);
  });

  test('a deflate bomb is 413 too', async () => {
    const id = await createJob(server);
    const body = deflateBomb(await gzipBomb(256), 256);
    const res = await new Promise<RawResponse>((resolve, reject) => {
      let answered = false;
      const req = request(
        `${server.url}/v2/logs/${id}/chunks`,
        { method: 'POST', headers: { ...auth(server.token), 'content-type': 'text/plain', 'content-encoding': 'deflate' } },
        (r) => {
          answered = true;
          const chunks: Buffer[] = [];
          r.on('data', (c: Buffer) => chunks.push(c));
          r.on('end', () => resolve({ status: r.statusCode!, headers: r.headers, body: Buffer.concat(chunks) }));
        },
      );
      req.on('error', (err) => answered || reject(err));
      req.end(body);
    });
    assertEnvelope(res, 413, 'request-too-large');
  });
});

describe('slow and half-open connections', () => {
  const partials = (id: string) => [
    '', // connects and says nothing
    'GET /v2/lo', // part of a request line
    `GET /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nAccept: tex`, // part of the headers
    `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n`, // headers without their end
  ];
  /** 300 connections that each send a part of a request (or nothing) and stall. */
  async function stall(server: TestServer, id: string) {
    const conns = Array.from({ length: 300 }, (_, i) => {
      const conn = rawConnection(server);
      const bytes = partials(id)[i % 4]!;
      if (bytes) conn.socket.write(bytes);
      return conn;
    });
    await waitFor(() => conns.every((c) => c.socket.readyState === 'open' || c.closed), 10_000, 'all connections');
    return conns;
  }

  test('300 half-open connections do not block a normal request', async () => {
    // The default headers timeout (15 s): the stalled connections surely outlive the requests below.
    const server = await startTestServer();
    const conns: ReturnType<typeof rawConnection>[] = [];
    try {
      const id = await createJob(server);
      assert.equal((await append(server, id, 'still served\n')).status, 200);
      conns.push(...(await stall(server, id)));
      const res = await fetch(`${server.url}/v2/logs/${id}`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200);
      assert.equal(await res.text(), 'still served\n');
      const me = await fetch(`${server.url}/v2/users/me`, { headers: auth(server.token), signal: AbortSignal.timeout(10_000) });
      assert.equal(me.status, 200);
      const appended = await fetch(`${server.url}/v2/logs/${id}/chunks`, {
        method: 'POST',
        headers: { ...auth(server.token), 'content-type': 'text/plain' },
        body: 'and written\n',
        signal: AbortSignal.timeout(10_000),
      });
      assert.equal(appended.status, 200);
      assert.equal(conns.filter((c) => c.closed).length, 0, 'all 300 were still open meanwhile');
    } finally {
      for (const c of conns) c.socket.destroy();
      await server.stop();
    }
  });

  test('the headers timeout closes them, answering 408 in the envelope', async () => {
    const server = await startTestServer({ headersTimeoutSecs: 1 });
    try {
      const id = await createJob(server);
      const conns = await stall(server, id);
      await waitFor(() => conns.every((c) => c.closed), 30_000, 'the server to close the stalled connections');
      const answered = conns.filter((c) => c.received);
      assert.ok(answered.length >= 150, `most got an answer before the close (${answered.length})`);
      for (const conn of answered) assertEnvelope(parseResponse(conn.received), 408, 'request-timeout');
      // And the server goes on serving.
      assert.equal((await fetch(`${server.url}/v2/logs/${id}`, { signal: AbortSignal.timeout(10_000) })).status, 200);
    } finally {
      await server.stop();
    }
  });
});
