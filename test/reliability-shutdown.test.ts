// Graceful shutdown of the real `buildlog serve` child process: SIGTERM while producers append and
// followers stream. Followers are raw sockets, so the chunked terminator (`0\r\n\r\n`) and the way the
// connection ends are seen as they are on the wire. Needs `npm run build` first (the bin runs dist/).
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { spawnServer, type ServerProcess } from './helpers/cli.js';
import { within } from './helpers/http.js';
import { createJob, startTestServer, tempDir } from './helpers/server.js';

const TOKEN = 'reliability-shutdown-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

const children = new Set<ServerProcess>();
const sockets = new Set<Socket>();
const dirs: string[] = [];
after(() => {
  for (const s of sockets) s.destroy();
  for (const c of children) c.child.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Resolves with `value` after `ms` without keeping the process alive (for races against an exit). */
const deadline = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms).unref());

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function serve(dir: string, port?: number, extra: string[] = []): Promise<ServerProcess & { port: number }> {
  const args = ['--data', dir, '--rate-limit-resource', '1000000', ...(port ? ['--port', String(port)] : []), ...extra];
  const server = await spawnServer(args, { BUILDLOG_TOKEN: TOKEN });
  children.add(server);
  server.child.once('exit', () => children.delete(server));
  return { ...server, port: Number(new URL(server.url).port) };
}

/**
 * One HTTP/1.1 request on a raw socket, its response parsed as it arrives: the status and headers, the
 * body (chunked or with a Content-Length), whether the chunked terminator arrived, and how the
 * connection ended. The socket is left open after the response, as a keep-alive client leaves it.
 */
class RawResponse {
  status = 0;
  headers: Record<string, string> = {};
  /** The terminating zero-size chunk (and the empty trailer) arrived. */
  complete = false;
  error: Error | null = null;
  socketClosed = false;
  /** An interim `100 Continue` arrived (the server has read the request's head and wants its body). */
  continued = false;
  readonly head: Promise<void>;
  readonly closed: Promise<void>;
  readonly #parts: Buffer[] = [];
  #received = 0;
  #pending = Buffer.alloc(0);
  #state: 'head' | 'size' | 'data' | 'data-end' | 'trailer' | 'fixed' | 'done' = 'head';
  #remaining = 0;
  #headDone!: () => void;

  constructor(readonly socket: Socket) {
    this.head = new Promise((r) => (this.#headDone = r));
    this.closed = new Promise((r) => socket.once('close', () => r()));
    socket.on('data', (b: Buffer) => this.#feed(b));
    socket.on('error', (err) => (this.error = err));
    socket.once('close', () => {
      this.socketClosed = true;
      this.#headDone();
    });
  }

  /** The body bytes so far (decoded from chunked). */
  body(): Buffer {
    return Buffer.concat(this.#parts);
  }

  get received(): number {
    return this.#received;
  }

  #feed(chunk: Buffer): void {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let i = 0;
    for (;;) {
      if (this.#state === 'head') {
        const end = buf.indexOf('\r\n\r\n', i);
        if (end < 0) break;
        const [statusLine, ...lines] = buf.toString('latin1', i, end).split('\r\n');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine!)?.[1]);
        if (status === 100) {
          this.continued = true;
          i = end + 4;
          continue;
        }
        this.status = status;
        for (const line of lines) {
          const colon = line.indexOf(':');
          this.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        i = end + 4;
        if (this.headers['transfer-encoding'] === 'chunked') this.#state = 'size';
        else {
          this.#state = 'fixed';
          this.#remaining = Number(this.headers['content-length'] ?? 0);
          if (this.#remaining === 0) this.#state = 'done';
        }
        this.#headDone();
      } else if (this.#state === 'size') {
        const end = buf.indexOf('\r\n', i);
        if (end < 0) break;
        const size = parseInt(buf.toString('latin1', i, end).split(';')[0]!, 16);
        i = end + 2;
        if (size === 0) this.#state = 'trailer';
        else {
          this.#remaining = size;
          this.#state = 'data';
        }
      } else if (this.#state === 'data' || this.#state === 'fixed') {
        if (i >= buf.length) break;
        const n = Math.min(this.#remaining, buf.length - i);
        this.#parts.push(buf.subarray(i, i + n));
        this.#received += n;
        i += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = this.#state === 'data' ? 'data-end' : 'done';
      } else if (this.#state === 'data-end') {
        if (buf.length - i < 2) break;
        if (buf.toString('latin1', i, i + 2) !== '\r\n') throw new Error('malformed chunked body');
        i += 2;
        this.#state = 'size';
      } else if (this.#state === 'trailer') {
        const end = buf.indexOf('\r\n', i);
        if (end < 0) break;
        const empty = end === i;
        i = end + 2;
        if (empty) {
          this.#state = 'done';
          this.complete = true;
        }
      } else {
        // Nothing may follow a complete response that was not asked for.
        if (i < buf.length) this.error = new Error(`unexpected bytes after the response: ${buf.toString('latin1', i, i + 40)}`);
        i = buf.length;
        break;
      }
    }
    this.#pending = Buffer.from(buf.subarray(i));
  }
}

async function rawGet(port: number, path: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const socket = connect(port, '127.0.0.1');
  sockets.add(socket);
  socket.once('close', () => sockets.delete(socket));
  const response = new RawResponse(socket);
  const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  await response.head;
  return response;
}

/** Chunk `k` of job `j`: numbered lines, a different size each time. */
function chunkOf(j: number, k: number): Buffer {
  let text = '';
  for (let i = 0; i < 1 + ((k * 5 + j) % 40); i++) text += `job ${j} chunk ${String(k).padStart(5, '0')} line ${i}\n`;
  return Buffer.from(text);
}

interface Producer {
  id: string;
  chunks: Buffer[];
  /** Chunks acknowledged (200). */
  acked: number;
  offset: number;
  /** How the loop ended: the first refused or failed append. */
  stoppedBy: string | null;
}

/** Appends chunk after chunk with X-Log-Offset until the first refusal or failure. */
async function produce(url: string, p: Producer, j: number, stopAfter = Infinity): Promise<void> {
  p.stoppedBy = null;
  while (p.acked < stopAfter) {
    const k = p.acked;
    p.chunks[k] ??= chunkOf(j, k);
    let res: Response;
    try {
      res = await fetch(`${url}/v2/logs/${p.id}/chunks`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'x-log-offset': String(p.offset) },
        body: new Uint8Array(p.chunks[k]!),
      });
      await res.arrayBuffer();
    } catch (err) {
      p.stoppedBy = (err as Error & { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      return;
    }
    if (res.status !== 200) {
      p.stoppedBy = `HTTP ${res.status}`;
      return;
    }
    p.acked++;
    p.offset += p.chunks[k]!.length;
  }
}

describe('SIGTERM', () => {
  test('live streams end with a complete chunked body, nothing acknowledged is lost, followers resume with Range', { timeout: 120_000 }, async (t) => {
    const dir = tempDir('buildlog-shutdown-');
    dirs.push(dir);
    let server = await serve(dir);
    const port = server.port;

    const JOBS = 4;
    const producers: Producer[] = [];
    for (let j = 0; j < JOBS; j++) {
      const res = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 201);
      producers.push({ id: ((await res.json()) as { data: { id: string } }).data.id, chunks: [], acked: 0, offset: 0, stoppedBy: null });
    }
    for (const [j, p] of producers.entries()) await produce(server.url, p, j, 3);

    // Per job a raw follower; job 0 also has a gzip one, job 1 a text (ANSI-filtered) one.
    const follow = (j: number, extra: Record<string, string> = {}, query = '&raw=1') =>
      rawGet(port, `/v2/logs/${producers[j]!.id}?stream=1${query}`, extra);
    const followers: { job: number; gzip: boolean; query: string; res: RawResponse }[] = [];
    for (let j = 0; j < JOBS; j++) followers.push({ job: j, gzip: false, query: '&raw=1', res: await follow(j) });
    followers.push({ job: 0, gzip: true, query: '&raw=1', res: await follow(0, { 'Accept-Encoding': 'gzip' }) });
    followers.push({ job: 1, gzip: false, query: '', res: await follow(1, {}, '') });
    for (const f of followers) {
      assert.equal(f.res.status, 200);
      assert.equal(f.res.headers['transfer-encoding'], 'chunked');
    }
    const decoded = (f: (typeof followers)[number]) => (f.gzip ? gunzipSync(f.res.body()) : f.res.body());

    // Producers append as fast as they can; SIGTERM lands while appends are in flight.
    const running = producers.map((p, j) => produce(server.url, p, j));
    await until(() => producers.every((p) => p.acked >= 30), 'appends before the signal');
    await until(() => followers.filter((f) => !f.gzip).every((f) => f.res.received > 0), 'followers to receive bytes');

    // An append whose request is under way when the signal comes (half its body sent) is finished and acknowledged.
    const slowJob = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    const slowId = ((await slowJob.json()) as { data: { id: string } }).data.id;
    const slowBody = Buffer.alloc(256 * 1024, 'an append that is still being uploaded at the signal\n');
    const slowSocket = connect(port, '127.0.0.1');
    sockets.add(slowSocket);
    const slow = new RawResponse(slowSocket);
    slowSocket.write(
      `POST /v2/logs/${slowId}/chunks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
        `Content-Type: application/octet-stream\r\nX-Log-Offset: 0\r\nContent-Length: ${slowBody.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
    // The server has read the head (it answers 100 Continue): the request is under way.
    await until(() => slow.continued, 'the server to take the append');
    slowSocket.write(slowBody.subarray(0, slowBody.length / 2));

    const signalled = Date.now();
    const exited = server.stop('SIGTERM');
    // The rest of the body once the server is closing: its live streams have begun to end.
    await until(() => followers.some((f) => f.res.complete || f.res.socketClosed), 'the shutdown to begin');
    slowSocket.write(slowBody.subarray(slowBody.length / 2));
    const code = await Promise.race([exited, deadline(20_000, 'no exit within 20 s')]);
    const exitMs = Date.now() - signalled;
    assert.equal(code, 0, `exit code after SIGTERM (stderr: ${server.stderr()})`);
    const wal = join(dir, 'buildlog.db-wal');
    assert.ok(!existsSync(wal) || statSync(wal).size === 0, 'the store was closed (its WAL checkpointed and removed)');
    await Promise.all(running);
    t.diagnostic(`exited ${exitMs} ms after SIGTERM; producers stopped by ${producers.map((p) => p.stoppedBy).join(', ')}`);
    await slow.head;
    assert.equal(slow.status, 200, `the append under way was finished: ${slow.body().toString()}`);
    assert.equal(slow.headers.connection, 'close', 'and the client is told the connection ends');

    // Every live response ended with the terminator, then the server closed the connection without error.
    for (const f of followers) {
      await Promise.race([f.res.closed, deadline(5000, null)]);
      assert.equal(f.res.error, null, `follower of job ${f.job}: no socket error`);
      assert.ok(f.res.complete, `follower of job ${f.job}${f.gzip ? ' (gzip)' : ''}: 0\\r\\n\\r\\n received`);
      assert.ok(f.res.socketClosed, `follower of job ${f.job}: the server closed the idle connection`);
    }
    for (const p of producers) assert.ok(p.stoppedBy, 'every producer was refused or cut off in the end');

    // The restart serves the same logs: all acknowledged bytes, and at most the one unanswered chunk more.
    server = await serve(dir, port);
    assert.equal(server.port, port);
    const slowLog = Buffer.from(await (await fetch(`${server.url}/v2/logs/${slowId}?raw=1`)).arrayBuffer());
    assert.ok(slowLog.equals(slowBody), 'the append finished during the shutdown is there after the restart');
    for (const [j, p] of producers.entries()) {
      const log = Buffer.from(await (await fetch(`${server.url}/v2/logs/${p.id}?raw=1`)).arrayBuffer());
      const acked = Buffer.concat(p.chunks.slice(0, p.acked));
      const withInFlight = Buffer.concat(p.chunks.slice(0, p.acked + 1));
      assert.ok(log.equals(acked) || log.equals(withInFlight), `job ${j}: ${log.length} bytes after restart, ${acked.length} acknowledged`);
    }
    for (const f of followers) {
      const got = decoded(f);
      const full = Buffer.concat(producers[f.job]!.chunks);
      assert.ok(got.equals(full.subarray(0, got.length)), `follower of job ${f.job}: what it got before the shutdown is a prefix of the log`);
    }

    // Followers resume where they stopped; producers retry their unanswered chunk at the same offset and finish.
    const resumed = await Promise.all(
      followers.map((f) =>
        follow(f.job, { Range: `bytes=${decoded(f).length}-`, ...(f.gzip ? { 'Accept-Encoding': 'gzip' } : {}) }, f.query),
      ),
    );
    for (const r of resumed) assert.equal(r.status, 206);
    await Promise.all(producers.map((p, j) => produce(server.url, p, j, p.acked + 20)));
    for (const p of producers) {
      assert.equal(p.stoppedBy, null);
      p.chunks.length = p.acked;
      const res = await fetch(`${server.url}/v2/actor-builds/${p.id}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body: '{"status":"SUCCEEDED"}' });
      assert.equal(res.status, 200);
    }
    for (const [i, f] of followers.entries()) {
      const r = resumed[i]!;
      await until(() => r.complete, `resumed follower ${i} to end`);
      const second = f.gzip ? gunzipSync(r.body()) : r.body();
      const full = Buffer.concat(producers[f.job]!.chunks);
      const whole = Buffer.concat([decoded(f), second]);
      assert.equal(whole.length, full.length, `follower ${i} of job ${f.job}: length`);
      assert.ok(whole.equals(full), `follower ${i} of job ${f.job}: no gap, no duplicate`);
      assert.equal(r.error, null);
    }
    assert.equal(await Promise.race([server.stop('SIGTERM'), deadline(20_000, 'no exit')]), 0);
  });

  test('a follower that stopped reading does not hold the shutdown', { timeout: 60_000 }, async () => {
    const dir = tempDir('buildlog-shutdown-');
    dirs.push(dir);
    // The 32 MiB stay in the retention window (5,000,000 characters by default): a reader that falls further
    // behind than the window for a moment (a loaded machine) is rightly cut off, and would never get everything.
    const server = await serve(dir, undefined, ['--retention-chars', String(64 * 1024 * 1024)]);
    const res = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
    const id = ((await res.json()) as { data: { id: string } }).data.id;

    // Sends its request and never reads: the server's socket buffers fill up behind it.
    const stalled = connect(server.port, '127.0.0.1');
    sockets.add(stalled);
    stalled.on('error', () => undefined);
    stalled.write(`GET /v2/logs/${id}?stream=1&raw=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    stalled.pause();
    const reader = await rawGet(server.port, `/v2/logs/${id}?stream=1&raw=1`);
    const block = Buffer.alloc(4 * 1024 * 1024, 'stalled reader test line\n');
    for (let i = 0; i < 8; i++) {
      const r = await fetch(`${server.url}/v2/logs/${id}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: new Uint8Array(block) });
      assert.equal(r.status, 200);
    }
    await until(() => reader.received === 8 * block.length, 'the reading follower to get everything');

    const code = await Promise.race([server.stop('SIGTERM'), deadline(20_000, 'no exit within 20 s')]);
    assert.equal(code, 0, `a clean exit, not the forced one (stderr: ${server.stderr()})`);
    await Promise.race([reader.closed, deadline(5000, null)]);
    assert.ok(reader.complete, 'the follower that reads still gets a complete response');
    assert.equal(reader.error, null);
  });
});

describe('requests that arrive while the server closes', () => {
  test('an append under way is finished and acknowledged; the connection closes after it', async () => {
    const server = await startTestServer();
    try {
      const id = await createJob(server);
      const { port } = new URL(server.url);
      const socket = connect(Number(port), '127.0.0.1');
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      let received = '';
      socket.on('data', (c: Buffer) => (received += c.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      // Headers and half of the body: the request is under way (its hooks ran) when the server starts closing.
      const started = new Promise<void>((resolve) => server.app.server.once('request', () => setImmediate(resolve)));
      socket.write(
        `POST /v2/logs/${id}/chunks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${server.token}\r\n` +
          'Content-Type: text/plain\r\nContent-Length: 10\r\n\r\nhello',
      );
      await within(started, 5000, 'the append to reach the server');
      const stopping = server.stop();
      // A request racing the shutdown is refused in the envelope, not with Fastify's own body.
      const late = await server.app.inject({ method: 'GET', url: `/v2/logs/${id}` });
      assert.equal(late.statusCode, 503);
      assert.equal(late.headers['retry-after'], '1');
      assert.deepEqual(late.json(), { error: { type: 'service-unavailable', message: 'The server is shutting down; retry in a moment.' } });
      socket.write('world');
      await within(closed, 15_000, 'the server to close the connection');
      await within(stopping, 15_000, 'the server to stop');
      assert.match(received, /^HTTP\/1\.1 200 /);
      assert.match(received, /\r\nconnection: close\r\n/i);
      assert.match(received, /"length":10/);
    } finally {
      await server.stop().catch(() => undefined);
    }
  });
});
