// What a request may carry and how slowly: body limits checked while reading (also after inflating: zip
// bombs), 415 for encodings the server does not speak, and half-open or slow connections
// (test/security-limits.test.ts: rate limits, streams, quotas).
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
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
import { assertEnvelope } from './helpers/envelope.js';
import { rawRequest as raw, type RawResponse } from './helpers/http.js';
import { api, append, createJob, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
    // A period, not an event: whatever the server still does with the rest of the body after the close is counted.
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
