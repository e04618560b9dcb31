// Hostile input: over 10,000 generated requests (seeded, so a failure can be replayed with FUZZ_SEED=<seed>;
// FUZZ_REQUESTS=<n> runs more) and a few hundred malformed ones on raw sockets, against the running server.
// No 5xx, every error in the Apify envelope, no crash, no hang, and the logs written before are
// byte-identical afterwards. What it found is pinned down in test/security-fuzz-findings.test.ts; the
// generator is test/helpers/fuzz-generator.ts.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createUser } from '../src/auth/tokens.js';
import { resolveConfig } from '../src/server/config.js';
import { startServer, type RunningServer } from '../src/server/app.js';
import { fuzzGenerator, MAX_BODY, prng, XSS, type FuzzRequest } from './helpers/fuzz-generator.js';
import { TOKEN, tempDir } from './helpers/server.js';

const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) >>> 0 : 0x5eed_b10c;
const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_500);
const RAW_REQUESTS = 400;
const CONCURRENCY = 16;
const REQUEST_TIMEOUT_MS = 20_000;

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
    const { generate } = fuzzGenerator({ fixtures, ownIds, fuzzToken });
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
