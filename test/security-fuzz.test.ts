// Hostile input: over 10,000 generated requests (seeded, so a failure can be replayed with FUZZ_SEED=<seed>;
// FUZZ_REQUESTS=<n> runs more) and a few hundred malformed ones on raw sockets, against the running server.
// No 5xx, every error in the Apify envelope, no crash, no hang, and the logs written before are
// byte-identical afterwards. Then what the fuzz found, pinned down as plain tests.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import { createUser } from '../src/auth/tokens.js';
import { resolveConfig } from '../src/server/config.js';
import { startServer, type RunningServer } from '../src/server/app.js';
import { append, createJob, startTestServer, TOKEN, tempDir, type TestServer } from './helpers/server.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : 0x5eed_b10c;
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_500);
const RAW_REQUESTS = 400;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 20_000;
const MAX_BODY = 64 * 1024;
const XSS = '<script>alert(1)</script>';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const chars = (n: number, alphabet: string) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  return { next, int, pick, chance, bytes, chars };
}
type Rng = ReturnType<typeof prng>;

interface FuzzRequest {
  n: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

interface Outcome {
  req: FuzzRequest;
  status?: number;
  headers?: IncomingHttpHeaders;
  body?: Buffer;
  /** A text/plain log body, read only in part (a stream of a running job never ends by itself). */
  logBody?: boolean;
  error?: string;
  /** The request before this one on the same keep-alive connection, if any (for the failure report). */
  previous?: FuzzRequest;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ODD = '!$&\'()*+,;=:@-._~%/?#[]{}|\\^`"<> ';

describe('fuzz', () => {
  let server: RunningServer;
  let dataDir: string;
  let fuzzToken: string;
  const serverLog: string[] = [];
  const fixtures: { id: string; kind: 'build' | 'run'; status: string; log: Buffer }[] = [];
  const ownIds: string[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, scheduling: 'fifo' });
  const lastOnSocket = new WeakMap<Socket, FuzzRequest>();

  /** One request over node:http; log bodies are read for a moment only (unless `whole`), everything else to its end. */
  function send(req: FuzzRequest, whole = false, via: Agent | false = agent): Promise<Outcome> {
    return new Promise((resolve) => {
      let done = false;
      let previous: FuzzRequest | undefined;
      const finish = (outcome: Omit<Outcome, 'req'>) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ req, previous, ...outcome });
      };
      const timer = setTimeout(() => {
        finish({ error: `no answer in ${REQUEST_TIMEOUT_MS} ms (hang)` });
        r.destroy();
      }, REQUEST_TIMEOUT_MS);
      const { hostname, port } = new URL(server.url);
      let r: ReturnType<typeof request>;
      try {
        r = request({ hostname, port, path: req.path, method: req.method, headers: req.headers, agent: via }, (res) => {
          const chunks: Buffer[] = [];
          const type = String(res.headers['content-type'] ?? '');
          const logBody = (res.statusCode === 200 || res.statusCode === 206) && type.startsWith('text/plain');
          res.on('data', (c: Buffer) => chunks.push(c));
          const complete = () => finish({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), logBody });
          res.on('end', complete);
          res.on('error', complete);
          res.on('close', complete);
          if (logBody && !whole) {
            // A stream of a running job stays open: take what comes within 50 ms, then hang up.
            setTimeout(() => {
              complete();
              r.destroy();
            }, 50);
          }
        });
      } catch (err) {
        // node:http refuses to send it at all (a header value it will not encode): nothing reached the server.
        clearTimeout(timer);
        return resolve({ req, error: `not sent: ${(err as Error).message}` });
      }
      r.on('socket', (socket) => {
        previous = lastOnSocket.get(socket);
        lastOnSocket.set(socket, req);
      });
      r.on('error', (err) => finish({ error: `${(err as NodeJS.ErrnoException).code ?? ''} ${err.message}` }));
      // node:http sends a body of a GET, HEAD, DELETE or OPTIONS without any framing unless it is told its
      // length (the server then rightly reads it as the next request): the length is always set, or chunked.
      if (!req.body) r.end();
      else if (req.headers['transfer-encoding'] === 'chunked') {
        r.write(req.body.subarray(0, req.body.length >> 1));
        r.end(req.body.subarray(req.body.length >> 1));
      } else r.end(req.body);
    });
  }

  async function get(path: string, headers: Record<string, string> = {}) {
    // A connection of its own: the fuzz agent's idle ones may be timing out just now.
    const outcome = await send({ n: -1, method: 'GET', path, headers }, true, false);
    assert.equal(outcome.error, undefined, `${path}: ${outcome.error}`);
    return outcome;
  }

  async function call(method: string, path: string, token: string, body?: string | Buffer, type = 'application/json') {
    const outcome = await send({
      n: -1,
      method,
      path,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
      body: body === undefined ? undefined : Buffer.from(body),
    }, true, false);
    assert.ok(outcome.status && outcome.status < 300, `${method} ${path}: ${outcome.status} ${outcome.body}`);
    return outcome.body!.length ? JSON.parse(outcome.body!.toString()) : undefined;
  }

  /** Every job's raw log bytes and status, as a reader sees them. */
  async function snapshot() {
    return Promise.all(
      fixtures.map(async (f) => {
        const log = await get(`/v2/logs/${f.id}?raw=1`);
        const job = JSON.parse((await get(`/v2/actor-${f.kind}s/${f.id}`)).body!.toString());
        return { id: f.id, status: job.data.status as string, log: log.body! };
      }),
    );
  }

  before(async () => {
    dataDir = tempDir('buildlog-fuzz-');
    const config = {
      ...resolveConfig({}, {}),
      host: '127.0.0.1',
      port: 0,
      dataDir,
      token: TOKEN,
      maxBodyBytes: MAX_BODY,
      // Most requests should reach the handlers rather than the limiter.
      rateLimitPerResource: 1_000_000,
      rateLimitPerClient: 100_000_000,
      maxStreamsPerClient: 10_000,
    };
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        serverLog.push(...chunk.toString().split('\n').filter(Boolean));
        callback();
      },
    });
    server = await startServer(config, { level: 'warn', stream });
    fuzzToken = (await createUser(server.store, 'fuzzer')).token;

    // Logs written before the fuzz, some finished and some running, with bytes of every kind.
    const contents = [
      Buffer.from('plain line\n'.repeat(50)),
      Buffer.concat([Buffer.from('\x1b[31mred\x1b[0m žluťoučký 🚀\r\n\t\x00\x07\x7f'), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80])]),
      Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256)),
      Buffer.alloc(0),
      Buffer.from('x'.repeat(200_000) + '\n'),
      Buffer.from(`${XSS}\n{"error":{"type":"fake"}}\n`),
    ];
    const endings = ['SUCCEEDED', 'RUNNING', 'FAILED', 'RUNNING', 'RUNNING', 'ABORTED'];
    for (let i = 0; i < contents.length; i++) {
      const kind = i % 2 === 0 ? 'build' : 'run';
      const job = await call('POST', `/v2/actor-${kind}s`, TOKEN, JSON.stringify({ actId: 'fuzz-target' }));
      const id = job.data.id as string;
      // In pieces, so that the store holds several chunks per log.
      for (let at = 0; at < contents[i]!.length; at += 60_000) {
        await call('POST', `/v2/logs/${id}/chunks`, TOKEN, contents[i]!.subarray(at, at + 60_000), 'application/octet-stream');
      }
      if (endings[i] !== 'RUNNING') await call('PUT', `/v2/actor-${kind}s/${id}`, TOKEN, JSON.stringify({ status: endings[i] }));
      fixtures.push({ id, kind, status: endings[i]!, log: contents[i]! });
    }
    // The fuzzer's own jobs, which its token may legitimately write to.
    for (let i = 0; i < 30; i++) {
      const job = await call('POST', `/v2/actor-${i % 2 ? 'run' : 'build'}s`, fuzzToken, JSON.stringify({ actId: 'fuzz-own' }));
      ownIds.push(job.data.id);
    }
  });

  after(async () => {
    agent.destroy();
    await server.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  // ------------------------------------------------------------------------------------------------------
  // The generator.
  // ------------------------------------------------------------------------------------------------------

  const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'POST', 'PUT', 'PUT', 'HEAD', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH'];
  const ODD_METHODS = ['PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'PURGE', 'REPORT', 'TRACE', 'LINK', 'UNLINK', 'NOTIFY', 'SUBSCRIBE', 'MERGE', 'QUERY', 'FOO', 'G3T', 'get', 'M-SEARCH'];
  const TEMPLATES = [
    '/v2/logs/{id}',
    '/v2/logs/{id}',
    '/v2/logs/{id}/chunks',
    '/v2/logs/{id}/chunks',
    '/v2/actor-builds/{id}',
    '/v2/actor-builds/{id}/log',
    '/v2/actor-builds/{id}/abort',
    '/v2/actor-runs/{id}',
    '/v2/actor-runs/{id}/log',
    '/v2/actor-runs/{id}/abort',
    '/v2/actor-builds',
    '/v2/actor-runs',
    '/v2/users/me',
    '/v2/actors/{actor}',
    '/v2/acts/{actor}',
    '/logs/{id}',
    '/viewer/{file}',
    '/',
    '/v2',
    '/v2/',
    '/v2/logs',
    '/v2//logs//{id}',
    '/v2/logs/{id}/../../users/me',
    '/v2/logs/{id}/chunks/extra',
    '/V2/LOGS/{id}',
    '/v2/%6cogs/{id}',
    '/v2/logs/..%2F..%2F..%2Fetc%2Fpasswd',
    '/../../../etc/passwd',
    '/v2/%2e%2e/%2e%2e/etc/passwd',
    '/v2/users/{id}',
    '/v2/actor-builds/{id}/log/{id}',
    '/{junk}',
    '/v2/{junk}/{id}',
    '*',
  ];
  const FILES = ['index.html', 'log-model.js', 'render.js', 'vendor/ansi_up.js', '../package.json', '..%2Fpackage.json', '%2e%2e/%2e%2e/etc/passwd', '....//....//etc/passwd', '.env', 'index.html%00.js', 'nope.js', '', '%'];

  function genId(rng: Rng): string {
    switch (rng.int(12)) {
      case 0:
      case 1:
      case 2:
        return rng.pick(fixtures).id;
      case 3:
      case 4:
        return rng.pick(ownIds);
      case 5:
        return rng.chars(17, ALNUM);
      case 6:
        return rng.chars(rng.pick([1, 16, 18, 63, 64, 65, 199, 200, 201, 300, 2000]), ALNUM);
      case 7:
        return rng.pick(['', '.', '..', '%2e%2e', '%2F', '%00', '%ff', '%', '%ZZ', '%E0%A4%A', 'null', 'undefined', '__proto__', 'constructor', '0', '-1', '1e9', 'ž', '🚀', '%F0%9F%9A%80', '%C3%A9', '\u00e9\u00ff', 'a;b', 'a,b', 'a@b', 'a~b']);
      case 8:
        return encodeURIComponent(XSS);
      case 9:
        return `${rng.pick(fixtures).id}${rng.pick(['%00', '.log', '..', '/', '?', '#', '%20', '%2F', 'A'])}`;
      default:
        return rng.chars(1 + rng.int(40), ALNUM + ODD).replace(/[ #?%]/g, (c) => encodeURIComponent(c));
    }
  }

  function genActor(rng: Rng): string {
    return rng.pick(['fuzz-target', 'fuzz-own', 'admin~fuzz-target', 'fuzzer~fuzz-own', 'nobody~x', '~', 'a~b~c', '%7E', encodeURIComponent(XSS), 'x'.repeat(rng.pick([1, 100, 201, 1000])), genId(rng)]);
  }

  function genQuery(rng: Rng): string {
    if (rng.chance(0.35)) return '';
    const keys = ['stream', 'stream', 'raw', 'raw', 'download', 'download', 'token', 'waitForFinish', 'gracefully', 'offset', 'limit', 'x', 'stream[]', '__proto__', 'constructor', '%74oken', 'STREAM', '', encodeURIComponent(XSS)];
    const values = ['1', '0', 'true', 'false', 'TRUE', ' 1 ', '%201%20', 'yes', 'no', '', '-1', '2', '%00', '%ff', '%', 'ž', '%F0%9F%9A%80', '0.05', '0.1', 'NaN', 'Infinity', '1e999', '1e3', 'abc', encodeURIComponent(XSS), '[]', '{}'];
    const parts: string[] = [];
    const n = 1 + rng.int(5);
    for (let i = 0; i < n; i++) {
      const key = rng.pick(keys);
      let value = rng.pick(values);
      if (key === 'token') value = rng.pick([fuzzToken, fuzzToken, 'bogus', '', encodeURIComponent(XSS), 'x'.repeat(300)]);
      if (key === 'waitForFinish' && !['0.05', '0.1', '0', '', 'abc', '-1', 'NaN', '1e3'].includes(value)) value = '0.05';
      parts.push(rng.chance(0.1) ? key : `${key}=${value}`);
      if (rng.chance(0.1)) parts.push(`${key}=${rng.pick(values)}`); // repeated
    }
    if (rng.chance(0.03)) parts.push(`pad=${'y'.repeat(rng.pick([1000, 8000, 15_000, 20_000]))}`); // huge
    return `${rng.pick(['?', '?', '?', '#', '?&'])}${parts.join(rng.pick(['&', '&', '&', ';', '&&']))}`;
  }

  function genHeaders(rng: Rng, method: string): Record<string, string> {
    const h: Record<string, string> = {};
    if (rng.chance(0.25)) h.range = rng.pick(['bytes=0-', 'bytes=5-', 'bytes=-5', 'bytes=0-0', 'bytes=3-2', 'bytes=999999999-', 'bytes=99999999999999999999-', 'bytes=0-99999999999999999999', 'bytes=0-1,3-4', 'items=0-1', 'bytes=', 'bytes=-', 'bytes=--1', 'bytes=abc', 'bytes = 1 - 2', 'bytes=-0', 'bytes=18446744073709551616-', `bytes=${XSS}`, 'bytes=1e3-']);
    if (rng.chance(0.3)) h['accept-encoding'] = rng.pick(['gzip', 'br', 'deflate', 'gzip, deflate, br', 'gzip;q=0, br', '*', '*;q=0', 'identity', 'gzip;q=abc', 'x', '', ',,,', 'br;q=0.5, gzip;q=0.6']);
    if (rng.chance(0.1)) h['if-none-match'] = rng.pick(['*', '"abc"', 'W/"x"', `"${rng.pick(fixtures).id}-0-10-raw"`, ',', XSS]);
    if (rng.chance(0.45)) h['content-type'] = rng.pick(['application/json', 'application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '', 'garbage', '*/*', 'application/json;;;', 'application/', XSS]);
    if (rng.chance(0.25)) h['content-encoding'] = rng.pick(['gzip', 'gzip', 'deflate', 'br', 'br', 'identity', 'compress', '', 'gzip, gzip', 'GZIP', 'x-gzip', 'zstd', XSS, '\u00e9']);
    if (rng.chance(0.6)) {
      h.authorization = rng.pick([`Bearer ${fuzzToken}`, `Bearer ${fuzzToken}`, `Bearer ${fuzzToken}`, 'Bearer junk', 'Basic Zm9vOmJhcg==', 'Bearer', 'Bearer ', `bearer   ${fuzzToken}   `, `Bearer ${'x'.repeat(5000)}`, 'Bearer a b', 'Bearer \u00e9\u00ff', `Bearer ${XSS}`, `Token ${fuzzToken}`]);
    }
    if (rng.chance(0.15)) h['x-log-offset'] = rng.pick(['0', '5', '-1', 'abc', '1e3', '99999999999999999999', ' 7 ', '', '0x10', String(rng.int(300_000))]);
    if (method === 'OPTIONS' || rng.chance(0.05)) {
      h.origin = rng.pick(['https://viewer.example', 'null', XSS, '']);
      if (rng.chance(0.7)) h['access-control-request-method'] = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'FOO', '']);
      if (rng.chance(0.5)) h['access-control-request-headers'] = rng.pick(['authorization, x-log-offset', 'x-evil', '', '*']);
    }
    if (rng.chance(0.02)) h.expect = rng.pick(['100-continue', 'something-else']);
    if (rng.chance(0.1)) h[`x-${rng.chars(1 + rng.int(12), 'abcdefghijklmnopqrstuvwxyz-')}`] = rng.chars(rng.int(64), ALNUM + ' ;,=');
    if (rng.chance(0.03)) h['x-huge'] = 'h'.repeat(rng.pick([4000, 12_000, 17_000]));
    if (rng.chance(0.05)) h['user-agent'] = rng.chars(rng.int(300), ALNUM + ODD);
    return h;
  }

  function genBody(rng: Rng, headers: Record<string, string>): Buffer | undefined {
    let body: Buffer;
    switch (rng.int(12)) {
      case 0:
      case 1:
        return undefined;
      case 2:
        body = rng.bytes(rng.int(2048));
        break;
      case 3:
        body = Buffer.from(rng.chars(rng.int(500), ALNUM + ODD + '\n\t\u00e9'), 'latin1');
        break;
      case 4:
        body = Buffer.from(
          JSON.stringify(
            rng.pick([
              { status: rng.pick(['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED-OUT', 'ABORTING', 'TIMING-OUT', 'RUNNING', 'READY', 'succeeded', '', null, 42]) },
              { status: 'FAILED', statusMessage: rng.chars(rng.pick([10, 2001]), ALNUM), exitCode: rng.pick([0, 1, -1, 1.5, '1', null]) },
              { actId: rng.pick(['ok-name', XSS, '', 'x'.repeat(101), 5]), buildNumber: rng.pick(['0.1.1', '', XSS, 1]) },
              { meta: rng.pick([{ a: 1 }, 'x', [], null, { big: 'b'.repeat(17_000) }]), options: rng.pick([{}, 1, { build: 'x' }]) },
              [],
              'string',
              null,
              42,
            ]),
          ),
        );
        break;
      case 5:
        body = Buffer.from(rng.pick(['{', '{"status":', '[1,2', '{"a":1}}', '\u0000', 'nul', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '"\\ud800"', '{"status":"SUCCEEDED",}', '\ufeff{}', '1e999999', '-']));
        break;
      case 6: {
        const depth = rng.pick([100, 1000, 10_000, 30_000]);
        body = Buffer.from(rng.chance(0.5) ? `{"meta":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}` : `${'['.repeat(depth)}${']'.repeat(depth)}`);
        break;
      }
      case 7:
        body = Buffer.alloc(rng.pick([MAX_BODY, MAX_BODY + 1, MAX_BODY * 2]), 'z');
        break;
      case 8: {
        // A zip bomb in miniature: inflates far past the limit.
        const zeros = Buffer.alloc(MAX_BODY * rng.pick([2, 16]));
        const encoding = rng.pick(['gzip', 'deflate', 'br']);
        headers['content-encoding'] = encoding;
        return encoding === 'gzip' ? gzipSync(zeros) : encoding === 'deflate' ? deflateSync(zeros) : brotliCompressSync(zeros);
      }
      default:
        body = Buffer.from(rng.pick(['hello\n', '{}', '{"status":"SUCCEEDED"}', 'line\r\n', '\x1b[31mred\n', rng.chars(rng.int(200), ALNUM + '\n')]));
    }
    // Compressed as declared (often), or truncated, or not at all.
    const declared = headers['content-encoding'];
    if (declared && ['gzip', 'deflate', 'br', 'GZIP', 'x-gzip'].includes(declared) && rng.chance(0.7)) {
      const packed = declared === 'deflate' ? deflateSync(body) : declared === 'br' ? brotliCompressSync(body) : gzipSync(body);
      return rng.chance(0.25) ? packed.subarray(0, Math.max(1, rng.int(packed.length))) : packed;
    }
    return body;
  }

  /** A request the API would accept as it is (so that the fuzz reaches deep into the handlers). */
  function wellFormed(rng: Rng): { method: string; text: string; headers: Record<string, string>; body?: Buffer } {
    const bearer = { authorization: `Bearer ${fuzzToken}` };
    const anyId = () => (rng.chance(0.5) ? rng.pick(fixtures).id : rng.pick(ownIds));
    const kindPath = (id: string) => {
      const fixture = fixtures.find((f) => f.id === id);
      const kind = fixture ? fixture.kind : ownIds.indexOf(id) % 2 ? 'run' : 'build';
      return `/v2/actor-${kind}s/${id}`;
    };
    const flags = () =>
      ['stream', 'raw', 'download']
        .filter(() => rng.chance(0.4))
        .map((f) => `${f}=${rng.pick(['1', 'true', '0'])}`)
        .join('&');
    const text = () => Buffer.from(rng.chars(1 + rng.int(300), ALNUM + ' \n\t\x1b[;m') + '\n', 'latin1');
    switch (rng.int(10)) {
      case 0:
      case 1:
      case 2: {
        const id = anyId();
        const headers: Record<string, string> = {};
        if (rng.chance(0.4)) headers.range = rng.pick(['bytes=0-', `bytes=${rng.int(300)}-`, `bytes=-${1 + rng.int(300)}`, `bytes=${rng.int(50)}-${50 + rng.int(50)}`]);
        if (rng.chance(0.4)) headers['accept-encoding'] = rng.pick(['gzip', 'br', 'gzip, deflate, br']);
        if (rng.chance(0.1)) headers['if-none-match'] = '*';
        const path = rng.pick([`/v2/logs/${id}`, `${kindPath(id)}/log`]);
        return { method: rng.pick(['GET', 'GET', 'HEAD']), text: `${path}?${flags()}`, headers };
      }
      case 3:
        return { method: 'GET', text: `${kindPath(anyId())}?waitForFinish=${rng.pick(['0', '0.05'])}`, headers: rng.chance(0.5) ? bearer : {} };
      case 4: {
        const encoding = rng.pick(['', '', 'gzip', 'deflate', 'br']);
        const raw = text();
        const body = encoding === 'gzip' ? gzipSync(raw) : encoding === 'deflate' ? deflateSync(raw) : encoding === 'br' ? brotliCompressSync(raw) : raw;
        const headers: Record<string, string> = { ...bearer, 'content-type': rng.pick(['text/plain', 'application/octet-stream']) };
        if (encoding) headers['content-encoding'] = encoding;
        if (rng.chance(0.3)) headers['x-log-offset'] = String(rng.int(2000));
        return { method: 'POST', text: `/v2/logs/${rng.pick(ownIds)}/chunks`, headers, body };
      }
      case 5:
        return {
          method: 'POST',
          text: `/v2/actor-${rng.pick(['build', 'run'])}s`,
          headers: { ...bearer, 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ actId: 'fuzz-new', ...(rng.chance(0.3) ? { meta: { n: rng.int(100) } } : {}) })),
        };
      case 6:
        return {
          method: 'PUT',
          text: kindPath(rng.pick(ownIds)),
          headers: { ...bearer, 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ status: rng.pick(['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTING', 'TIMING-OUT']), statusMessage: 'fuzz' })),
        };
      case 7:
        return { method: 'POST', text: `${kindPath(rng.pick(ownIds))}/abort${rng.chance(0.5) ? '?gracefully=1' : ''}`, headers: bearer };
      case 8:
        return { method: 'GET', text: rng.pick(['/v2/users/me', '/v2/actors/fuzz-own', '/v2/acts/fuzzer~fuzz-own', '/v2/actors/fuzz-target']), headers: bearer };
      default:
        return { method: 'OPTIONS', text: `/v2/logs/${anyId()}`, headers: { origin: 'https://viewer.example', 'access-control-request-method': 'GET' } };
    }
  }

  function generate(rng: Rng, n: number): FuzzRequest {
    let method: string;
    let text: string;
    let headers: Record<string, string>;
    let body: Buffer | undefined;
    if (rng.chance(0.4)) {
      ({ method, text, headers, body } = wellFormed(rng));
      // Then, half the time, one thing goes wrong.
      switch (rng.chance(0.5) ? rng.int(6) : -1) {
        case 0:
          delete headers.authorization;
          break;
        case 1:
          text = text.replace(/[A-Za-z0-9]{17}/, () => rng.pick(fixtures).id); // someone else's job
          break;
        case 2:
          Object.assign(headers, genHeaders(rng, method));
          break;
        case 3:
          body = genBody(rng, headers);
          break;
        case 4:
          method = rng.pick([...METHODS, ...ODD_METHODS]);
          break;
        case 5:
          text += genQuery(rng).replace(/^[?#]/, text.includes('?') ? '&' : '?');
          break;
      }
    } else {
      method = rng.chance(0.06) ? rng.pick(ODD_METHODS) : rng.pick(METHODS);
      text =
        rng
          .pick(TEMPLATES)
          .replace(/\{id\}/g, () => genId(rng))
          .replace('{actor}', () => genActor(rng))
          .replace('{file}', () => rng.pick(FILES))
          .replace('{junk}', () => rng.chars(1 + rng.int(30), ALNUM + '-_.~%').replace(/%/g, '%25')) + genQuery(rng);
      headers = genHeaders(rng, method);
      body = rng.chance(method === 'GET' || method === 'HEAD' ? 0.1 : 0.85) ? genBody(rng, headers) : undefined;
    }
    // Non-ASCII goes out as raw UTF-8 bytes (node:http writes the path as latin1); only what cannot be in a
    // request line at all (controls, space) is %-escaped.
    const path = Buffer.from(text, 'utf8')
      .toString('latin1')
      .replace(/[\x00-\x20\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    if (body && rng.chance(0.2)) headers['transfer-encoding'] = 'chunked';
    else if (body) headers['content-length'] = String(body.length);
    return { n, method, path, headers, body };
  }

  // ------------------------------------------------------------------------------------------------------
  // The checks on every answer.
  // ------------------------------------------------------------------------------------------------------

  function problems(o: Outcome): string[] {
    const found: string[] = [];
    if (o.error) {
      // node:http could not send it: fine, the server never saw it. Anything else (a hang, or a connection
      // reset before the answer was read) is a failure: the server answers every request it can parse, and
      // closes gently after refusing a body, so that the client still reads the answer.
      if (o.error.startsWith('not sent:')) return [];
      return [`no answer: ${o.error}`];
    }
    const status = o.status!;
    const body = o.body!;
    const type = String(o.headers!['content-type'] ?? '');
    if (status >= 500) found.push(`status ${status}`);
    if (o.req.method === 'HEAD' && body.length > 0) found.push('a HEAD answer with a body');
    const disposition = o.headers!['content-disposition'];
    if (disposition !== undefined && !/^attachment; filename="[A-Za-z0-9]{1,64}\.log"$/.test(String(disposition))) {
      found.push(`unsafe Content-Disposition ${disposition}`);
    }
    if (status >= 400 && body.length > 0) {
      if (!/^application\/json(;|$)/.test(type)) found.push(`error body of type "${type}": ${body.toString().slice(0, 120)}`);
      else {
        try {
          const parsed = JSON.parse(body.toString('utf8')) as { error?: { type?: unknown; message?: unknown } };
          const keys = Object.keys(parsed).join(',');
          const errorKeys = Object.keys(parsed.error ?? {}).sort().join(',');
          if (keys !== 'error' || errorKeys !== 'message,type') found.push(`not the envelope: ${body.toString().slice(0, 200)}`);
          else if (typeof parsed.error!.type !== 'string' || typeof parsed.error!.message !== 'string' || !parsed.error!.message) {
            found.push(`envelope with bad fields: ${body.toString().slice(0, 200)}`);
          } else {
            if (/\n\s+at |\.ts:\d+|\.js:\d+/.test(parsed.error!.message)) found.push(`a stack trace: ${parsed.error!.message}`);
            if (parsed.error!.message.includes('<script')) found.push(`request text echoed unescaped: ${parsed.error!.message}`);
          }
        } catch {
          found.push(`error body is not JSON: ${body.toString().slice(0, 120)}`);
        }
      }
    }
    if (status >= 200 && status < 300 && /^application\/json/.test(type) && body.length > 0 && !o.logBody) {
      try {
        JSON.parse(body.toString('utf8'));
      } catch {
        found.push('a 2xx JSON body that does not parse');
      }
    }
    return found;
  }

  test(`${REQUESTS} generated requests (seed ${SEED}; replay with FUZZ_SEED=${SEED})`, async (t) => {
    t.diagnostic(`fuzz seed ${SEED}`);
    console.log(`# fuzz seed ${SEED} (replay: FUZZ_SEED=${SEED} node --import tsx --test test/security-fuzz.test.ts)`);
    const rng = prng(SEED);
    // All requests are generated up front from the seed: the set is the same on every run, whatever the timing.
    // (Before any request goes out: generating takes a few seconds, longer than the server keeps an idle
    // keep-alive connection, and reusing one it is just closing would fail on the client's side.)
    const requests = Array.from({ length: REQUESTS }, (_, n) => generate(rng, n));
    const before = await snapshot();
    for (let i = 0; i < fixtures.length; i++) assert.ok(before[i]!.log.equals(fixtures[i]!.log), `fixture ${i} stored as written`);
    const failures: string[] = [];
    const statuses = new Map<string, number>();
    let completed = 0;
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const req = requests[next++]!;
          const outcome = await send(req);
          completed++;
          const key = outcome.status ? String(outcome.status) : (outcome.error ?? '').slice(0, 40);
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          for (const p of problems(outcome)) {
            const show = (r: FuzzRequest) => `#${r.n} ${r.method} ${r.path.slice(0, 160)} ${JSON.stringify(r.headers).slice(0, 200)} body ${r.body?.length ?? 'none'}`;
            if (failures.length < 30) failures.push(`${show(req)}: ${p}${outcome.previous ? ` (after ${show(outcome.previous)})` : ''}`);
          }
        }
      }),
    );
    const summary = [...statuses.entries()].sort().map(([k, v]) => `${k}:${v}`).join(' ');
    t.diagnostic(`${completed} requests in ${Date.now() - started} ms; answers ${summary}`);
    assert.deepEqual(failures, [], `seed ${SEED}`);
    assert.equal(completed, REQUESTS, 'every request completed');
    const answered = [...statuses.entries()].filter(([k]) => /^\d+$/.test(k)).reduce((n, [, v]) => n + v, 0);
    assert.ok(answered >= REQUESTS * 0.9, `most requests got an answer (${answered})`);
    assert.ok((statuses.get('429') ?? 0) < REQUESTS * 0.05, 'the limiter let most requests through');

    // Still alive, and nothing written before has changed.
    const health = await get('/v2/users/me', { authorization: `Bearer ${TOKEN}` });
    assert.equal(health.status, 200);
    const afterwards = await snapshot();
    for (let i = 0; i < fixtures.length; i++) {
      assert.equal(afterwards[i]!.status, fixtures[i]!.status, `fixture ${i} status`);
      assert.ok(afterwards[i]!.log.equals(fixtures[i]!.log), `fixture ${i} log is byte-identical (${afterwards[i]!.log.length} vs ${fixtures[i]!.log.length} bytes)`);
    }
    const errors = serverLog.filter((line) => (JSON.parse(line) as { level: number }).level >= 50);
    assert.deepEqual(errors, [], 'nothing logged at error level');
    t.diagnostic(`server warnings: ${serverLog.length}${serverLog.length ? `, e.g. ${serverLog[0]!.slice(0, 300)}` : ''}`);
  });

  test(`${RAW_REQUESTS} malformed requests on raw sockets: 400 (or another 4xx) or a close, never a crash or a hang`, async (t) => {
    const rng = prng(SEED ^ 0xbadc0de);
    const id = fixtures[0]!.id;
    const lines = [
      'GET',
      'GET /',
      'GET / HTTP/9.9',
      'GET / HTTP/1.1 extra',
      '/ GET HTTP/1.1',
      ' GET / HTTP/1.1',
      'GET\t/\tHTTP/1.1',
      'get /v2/users/me HTTP/1.1',
      'G@T / HTTP/1.1',
      'GET /\x00 HTTP/1.1',
      `GET /v2/logs/${id}\x7f HTTP/1.1`,
      `GET http://evil.example/v2/logs/${id} HTTP/1.1`,
      'GET * HTTP/1.1',
      'OPTIONS * HTTP/1.1',
      'CONNECT evil.example:443 HTTP/1.1',
      'PRI * HTTP/2.0',
      `GET /v2/logs/${id} HTTP/1.0`,
      `GET /v2/logs/${id} HTTP/0.9`,
      `GET /v2/logs/${id} HTTP/1.1`,
      `GET /v2/logs/${id}?raw=1 HTTPS/1.1`,
      `GET /v2/logs/${'%'.repeat(50)} HTTP/1.1`,
      `GET /${'a'.repeat(20_000)} HTTP/1.1`,
      `POST /v2/logs/${id}/chunks HTTP/1.1`,
      '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
      '',
    ];
    const headerSets = [
      'Host: x',
      'Host x',
      ' Host: x',
      'Host: x\r\n folded: continuation',
      'Host: x\r\nContent-Length: abc',
      'Host: x\r\nContent-Length: -1',
      'Host: x\r\nContent-Length: 1, 2',
      'Host: x\r\nContent-Length: 3\r\nContent-Length: 4',
      'Host: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked',
      'Host: x\r\nTransfer-Encoding: gzip, chunked',
      'Host: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity',
      'Host: x\r\nTransfer-Encoding: chunked',
      'Host: x\r\nBad Name: x',
      'Host: x\r\nX-Nul: a\x00b',
      'Host: x\nX-Bare-Lf: yes',
      'Host: x\rX-Bare-Cr: yes',
      `Host: x\r\nX-Long: ${'l'.repeat(20_000)}`,
      Array.from({ length: 3000 }, (_, i) => `X-H${i}: v`).join('\r\n'),
      '',
      `Host: x\r\nAuthorization: Bearer ${fuzzToken}\r\nContent-Type: text/plain`,
      'Host: x\r\n: no-name',
      'Host: x\r\nX-Utf8: \u00e9\u00ff',
      `Host: x\r\nRange: bytes=${'9'.repeat(400)}-`,
    ];
    const bodies = ['', '0\r\n\r\n', 'zz\r\nabc\r\n0\r\n\r\n', '5\r\nab\r\n', 'abc', '{"status":"SUCCEEDED"}', '3\r\nabc\r\n0\r\nTrailer: x\r\n\r\n', '\r\n\r\n\r\n'];
    const requests = Array.from({ length: RAW_REQUESTS }, () => {
      if (rng.chance(0.08)) return rng.bytes(1 + rng.int(600)); // pure garbage
      const head = `${rng.pick(lines)}\r\n${rng.pick(headerSets)}`;
      const end = rng.pick(['\r\n\r\n', '\r\n\r\n', '\r\n\r\n', '\r\n', '', '\n\n']);
      return Buffer.from(`${head}${end}${rng.pick(bodies)}`, 'latin1');
    });
    const { hostname, port } = new URL(server.url);
    const failures: string[] = [];
    const statuses = new Map<string, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < requests.length) {
          const n = next++;
          const bytes = requests[n]!;
          const result = await new Promise<{ received: string; hung: boolean }>((resolve) => {
            const socket = connect(Number(port), hostname);
            let received = '';
            // We send FIN after the bytes: the server must answer and close, whatever they were.
            const timer = setTimeout(() => {
              socket.destroy();
              resolve({ received, hung: true });
            }, REQUEST_TIMEOUT_MS);
            socket.on('data', (d) => (received += d.toString('latin1')));
            socket.on('error', () => undefined);
            socket.on('close', () => {
              clearTimeout(timer);
              resolve({ received, hung: false });
            });
            socket.end(bytes);
          });
          const label = `raw #${n} ${JSON.stringify(bytes.toString('latin1').slice(0, 100))}`;
          if (result.hung) failures.push(`${label}: the server neither answered nor closed`);
          const answers = [...result.received.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
          const key = answers.length ? answers.join('+') : 'closed';
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          if (answers.some((s) => s >= 500)) failures.push(`${label}: ${result.received.slice(0, 200)}`);
          // An error answer that has a body carries the envelope (the first one; later ones are pipelined).
          const first = /^HTTP\/1\.[01] (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(result.received);
          if (first && Number(first[1]) >= 400) {
            const length = /content-length: (\d+)/i.exec(first[2]!)?.[1];
            if (length && Number(length) > 0) {
              const body = result.received.slice(first[0].length, first[0].length + Number(length));
              let envelope = false;
              try {
                const parsed = JSON.parse(body) as { error?: Record<string, unknown> };
                envelope =
                  Object.keys(parsed).join() === 'error' &&
                  Object.keys(parsed.error!).sort().join() === 'message,type' &&
                  typeof parsed.error!.type === 'string' &&
                  typeof parsed.error!.message === 'string';
              } catch {
                // not JSON
              }
              if (!/content-type: application\/json/i.test(first[2]!) || !envelope) {
                failures.push(`${label}: not the envelope: ${result.received.slice(0, 300)}`);
              }
            }
          }
        }
      }),
    );
    t.diagnostic(`raw answers ${[...statuses.entries()].sort().map(([k, v]) => `${k}:${v}`).join(' ')}`);
    assert.deepEqual(failures.slice(0, 30), [], `seed ${SEED}`);
    const health = await get('/v2/users/me', { authorization: `Bearer ${TOKEN}` });
    assert.equal(health.status, 200, 'the server still answers');
    const afterwards = await snapshot();
    for (let i = 0; i < fixtures.length; i++) assert.ok(afterwards[i]!.log.equals(fixtures[i]!.log), `fixture ${i} intact`);
  });
});

/**
 * Sends raw bytes and returns everything the server wrote before it closed (bounded). The client closes its
 * side once a whole answer is in, as clients do (Node ends a connection as soon as the client half-closes,
 * so an answer that takes a moment would never be written).
 */
function exchange(url: string, bytes: string | Buffer, timeoutMs = 10_000): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close in ${timeoutMs} ms; got ${JSON.stringify(received.slice(0, 200))}`));
    }, timeoutMs);
    socket.on('data', (d) => {
      received += d.toString('latin1');
      const head = /^HTTP\/1\.1 \d{3} [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(received);
      const length = Number(/content-length: (\d+)/i.exec(head?.[1] ?? '')?.[1] ?? 0);
      if (head && received.length >= head[0].length + length) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
    socket.write(bytes);
  });
}

/** The status, headers and (parsed) body of the first answer in `text`. */
function firstAnswer(text: string) {
  const m = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n/.exec(text);
  assert.ok(m, `an answer: ${JSON.stringify(text.slice(0, 200))}`);
  const headers = Object.fromEntries(
    m[2]!.split('\r\n').map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  );
  const length = Number(headers['content-length'] ?? 0);
  const body = text.slice(m[0].length, m[0].length + length);
  return { status: Number(m[1]), headers, body, rest: text.slice(m[0].length + length) };
}

function assertEnvelope(answer: { status: number; headers: Record<string, string>; body: string }, status: number, type: string) {
  assert.equal(answer.status, status, answer.body);
  assert.match(answer.headers['content-type'] ?? '', /^application\/json/);
  const parsed = JSON.parse(answer.body) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(parsed), ['error']);
  assert.deepEqual(Object.keys(parsed.error).sort(), ['message', 'type']);
  assert.equal(parsed.error.type, type);
  return parsed.error.message;
}

// What the fuzz found, pinned down so that it stays fixed whatever the seed.
describe('found by the fuzz', () => {
  let server: TestServer;
  let id: string;
  const rawRequest = (lines: string[], body = '') => `${lines.join('\r\n')}\r\n\r\n${body}`;
  before(async () => {
    server = await startTestServer({ maxBodyBytes: 1024 * 1024 });
    id = await createJob(server);
    assert.equal((await append(server, id, 'hello\n')).status, 200);
  });
  after(() => server.stop());

  test('a JSON body nested deeper than the stack is 400, not 500', async () => {
    const body = `{"meta":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`;
    const text = await exchange(
      server.url,
      rawRequest(['POST /v2/actor-builds HTTP/1.1', 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Type: application/json', `Content-Length: ${body.length}`, 'Connection: close'], body),
    );
    assert.match(assertEnvelope(firstAnswer(text), 400, 'invalid-input'), /"meta"/);
  });

  test('a malformed %-escape in the path and an over-long id get the envelope, without the URL quoted back', async () => {
    for (const [path, status, type] of [
      ['/v2/logs/%ff', 400, 'invalid-input'],
      [`/v2/actors/${encodeURIComponent('<b>')}%E0%A4%A`, 400, 'invalid-input'],
      [`/v2/logs/${'A'.repeat(201)}`, 404, 'record-not-found'],
      [`/v2/actor-builds/${'B'.repeat(5000)}/log`, 404, 'record-not-found'],
    ] as const) {
      const answer = firstAnswer(await exchange(server.url, rawRequest([`GET ${path} HTTP/1.1`, 'Host: x', 'Connection: close'])));
      const message = assertEnvelope(answer, status, type);
      assert.ok(!message.includes(path.slice(9, 40)), `no echo of the path: ${message}`);
    }
  });

  test('requests Node itself refuses get the envelope too; the answer to a HEAD has no body', async () => {
    for (const [bytes, status, type] of [
      ['GET\r\n\r\n', 400, 'invalid-input'],
      ['G@T / HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'invalid-input'],
      ['GET / HTTP/1.1\r\nHost x\r\n\r\n', 400, 'invalid-input'],
      [`GET /v2/logs/${'a'} HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`, 431, 'request-too-large'],
    ] as const) {
      const answer = firstAnswer(await exchange(server.url, bytes));
      assertEnvelope(answer, status, type);
      assert.equal(answer.headers.connection, 'close');
    }
    const head = firstAnswer(await exchange(server.url, `HEAD /v2/logs/${id} HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`));
    assert.equal(head.status, 431);
    assert.equal(head.body, '');
    assert.equal(head.rest, '', 'nothing after the head');
  });

  test('a large body that is not what its Content-Encoding says is answered 400 (the connection is not dropped first)', async () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const body = 'not compressed at all '.repeat(3000);
      const text = await exchange(
        server.url,
        rawRequest(['POST /v2/logs/' + id + '/chunks HTTP/1.1', 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Type: text/plain', `Content-Encoding: ${encoding}`, `Content-Length: ${body.length}`], body),
      );
      assertEnvelope(firstAnswer(text), 400, 'invalid-input');
    }
    assert.equal(await (await fetch(`${server.url}/v2/logs/${id}`)).text(), 'hello\n');
  });

  test('an unsupported Content-Encoding is named in the message without markup', async () => {
    const text = await exchange(
      server.url,
      rawRequest([`POST /v2/logs/${id}/chunks HTTP/1.1`, 'Host: x', `Authorization: Bearer ${server.token}`, 'Content-Encoding: <script>alert(1)</script>', 'Content-Length: 2', 'Connection: close'], 'ab'),
    );
    const message = assertEnvelope(firstAnswer(text), 415, 'unsupported-content-encoding');
    assert.doesNotMatch(message, /[<>]/);
  });

  test('a Range with numbers past 15 digits is ignored (the whole log), not an offset of 1e+23', async () => {
    for (const range of [`bytes=${'9'.repeat(23)}-`, `bytes=0-${'9'.repeat(400)}`, `bytes=-${'9'.repeat(16)}`]) {
      const res = await fetch(`${server.url}/v2/logs/${id}`, { headers: { range } });
      assert.equal(res.status, 200, range);
      assert.equal(res.headers.get('x-log-offset'), '0');
      assert.equal(await res.text(), 'hello\n');
    }
  });
});
