// Slow readers cannot hurt the server or the others: a follower that stops reading while 200 MB are
// appended to its log keeps the server's memory growth bounded, a normal follower receives every byte, and
// the producer is not held up. In-process server, so its memory is this process's memory.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { scrape, value } from './helpers/metrics.js';
import { createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

const MIB = 1024 * 1024;
const CHUNKS = 200;
const LIMIT_BYTES = 100 * MIB;

let server: TestServer | undefined;
const sockets = new Set<Socket>();
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
after(async () => {
  for (const s of sockets) s.destroy();
  agent.destroy();
  await server?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The V8 collector, exposed at run time when the process was not started with --expose-gc. */
function findGc(): (() => void) | null {
  if (typeof globalThis.gc === 'function') return globalThis.gc as () => void;
  try {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}
const gc = findGc();

const usage = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
};

/** Live memory: after a full collection, or without one the least of a few samples (garbage not yet collected only adds). */
async function liveMemory(): Promise<number> {
  if (gc) {
    gc();
    await sleep(10);
    gc();
    return usage();
  }
  let least = Infinity;
  for (let i = 0; i < 5; i++) {
    least = Math.min(least, usage());
    await sleep(50);
  }
  return least;
}

/** Chunk `k`: 1 MiB of numbered lines, different for every chunk. */
function chunkOf(k: number): Buffer {
  return Buffer.alloc(MIB, `chunk ${String(k).padStart(3, '0')}: the quick brown fox jumps over the lazy dog\n`);
}

function post(url: URL, path: string, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: 'POST', path, agent,
        headers: { authorization: `Bearer ${server!.token}`, 'content-type': 'application/octet-stream', 'content-length': body.length } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Decodes a chunked HTTP/1.1 response from raw socket bytes into a running hash, without keeping the
 * body: how far it got, and whether the terminator arrived.
 */
class ChunkedHasher {
  status = 0;
  received = 0;
  complete = false;
  readonly hash = createHash('sha256');
  #pending = Buffer.alloc(0);
  #state: 'head' | 'size' | 'data' | 'data-end' | 'trailer' | 'done' = 'head';
  #remaining = 0;

  feed(chunk: Buffer): void {
    const buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    let i = 0;
    while (i <= buf.length) {
      if (this.#state === 'head') {
        const end = buf.indexOf('\r\n\r\n', i);
        if (end < 0) break;
        this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1', i, end))?.[1]);
        assert.match(buf.toString('latin1', i, end), /transfer-encoding: chunked/i);
        i = end + 4;
        this.#state = 'size';
      } else if (this.#state === 'size' || this.#state === 'trailer') {
        const end = buf.indexOf('\r\n', i);
        if (end < 0) break;
        const line = buf.toString('latin1', i, end);
        i = end + 2;
        if (this.#state === 'trailer') {
          if (line === '') this.#state = 'done';
        } else {
          this.#remaining = parseInt(line.split(';')[0]!, 16);
          this.#state = this.#remaining === 0 ? 'trailer' : 'data';
        }
      } else if (this.#state === 'data') {
        if (i >= buf.length) break;
        const n = Math.min(this.#remaining, buf.length - i);
        this.hash.update(buf.subarray(i, i + n));
        this.received += n;
        i += n;
        this.#remaining -= n;
        if (this.#remaining === 0) this.#state = 'data-end';
      } else if (this.#state === 'data-end') {
        if (buf.length - i < 2) break;
        i += 2;
        this.#state = 'size';
      } else {
        this.complete = true;
        break;
      }
    }
    if (this.#state === 'done') this.complete = true;
    this.#pending = Buffer.from(buf.subarray(i));
  }
}

describe('slow readers', () => {
  test(`a stalled follower keeps memory growth under 100 MB while ${CHUNKS} MB are appended; a normal follower gets every byte`, { timeout: 180_000 }, async (t) => {
    // The whole 200 MB stays in the retention window, so the stalled reader still owes nothing that was trimmed.
    server = await startTestServer({ retentionChars: 300 * MIB, rateLimitPerResource: 1_000_000 });
    const url = new URL(server.url);
    const id = await createJob(server);
    const path = `/v2/logs/${id}?stream=1&raw=1`;

    // The stalled follower: sends its request and never reads a byte.
    const stalled = connect(Number(url.port), url.hostname);
    sockets.add(stalled);
    let stalledClosed = false;
    stalled.on('close', () => (stalledClosed = true));
    stalled.on('error', () => undefined);
    stalled.write(`GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
    stalled.pause();

    // The normal follower: reads everything, keeps only a hash.
    const normal = { status: 0, received: 0, hash: createHash('sha256'), ended: false, error: null as Error | null };
    const normalReq = request({ host: url.hostname, port: url.port, path, agent: false }, (res) => {
      normal.status = res.statusCode ?? 0;
      res.on('data', (c: Buffer) => {
        normal.received += c.length;
        normal.hash.update(c);
      });
      res.on('end', () => (normal.ended = true));
      res.on('error', (err) => (normal.error = err));
    });
    normalReq.on('error', (err) => (normal.error = err));
    normalReq.end();
    await until(() => normal.status !== 0, 'the normal follower\'s response head');
    assert.equal(normal.status, 200);
    // Both followers are following (the stalled one's request has been taken) before anything is appended.
    await until(async () => value(await scrape(server!), 'buildlog_live_followers') === 2, 'both followers to be registered');

    const baseline = await liveMemory();
    let peakLive = 0;
    let peakSampled = 0;
    const sampler = setInterval(() => (peakSampled = Math.max(peakSampled, usage() - baseline)), 100);

    const expected = createHash('sha256');
    const latencies: number[] = [];
    const started = Date.now();
    try {
      for (let k = 0; k < CHUNKS; k++) {
        const chunk = chunkOf(k);
        expected.update(chunk);
        const t0 = performance.now();
        assert.equal(await post(url, `/v2/logs/${id}/chunks`, chunk), 200);
        latencies.push(performance.now() - t0);
        if (k % 25 === 24) peakLive = Math.max(peakLive, (await liveMemory()) - baseline);
      }
      // The normal follower keeps up (bounded wait, not a timing assertion).
      await until(() => normal.received === CHUNKS * MIB || normal.error !== null, 'the normal follower to receive all bytes', 120_000);
      peakLive = Math.max(peakLive, (await liveMemory()) - baseline);
    } finally {
      clearInterval(sampler);
    }
    const appendSecs = (Date.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    t.diagnostic(
      `${CHUNKS} MiB appended in ${appendSecs.toFixed(1)} s (append p50 ${latencies[latencies.length >> 1]!.toFixed(1)} ms, ` +
        `max ${latencies.at(-1)!.toFixed(1)} ms); memory growth after gc ${(peakLive / MIB).toFixed(1)} MB, ` +
        `sampled without gc ${(peakSampled / MIB).toFixed(1)} MB (gc ${gc ? 'available' : 'not available'}); ` +
        `stalled reader had taken ${(stalled.bytesRead / MIB).toFixed(1)} MB`,
    );

    assert.ok(peakLive < LIMIT_BYTES, `server memory grew by ${(peakLive / MIB).toFixed(1)} MB`);
    assert.equal(normal.error, null);
    assert.equal(normal.received, CHUNKS * MIB);
    const digest = expected.digest('hex');
    assert.equal(normal.hash.digest('hex'), digest, 'the normal follower got every byte, in order');
    // The stalled reader really stalled: it took (next to) nothing while 200 MB went by, and it is still connected.
    assert.ok(stalled.bytesRead < 16 * MIB, `stalled reader read ${stalled.bytesRead} bytes`);
    assert.equal(stalledClosed, false);

    // Finish the job; the stalled reader starts reading again and gets the whole log exactly too (the
    // server read what it owed back from the store instead of queueing it).
    assert.equal((await finish(server, id)).status, 200);
    await until(() => normal.ended, 'the normal follower to end');
    const late = new ChunkedHasher();
    stalled.on('data', (c: Buffer) => late.feed(c));
    stalled.resume();
    await until(() => late.complete || stalledClosed, 'the stalled follower to catch up', 120_000);
    assert.equal(late.status, 200);
    assert.ok(late.complete, 'its response ends with the terminator');
    assert.equal(late.received, CHUNKS * MIB);
    assert.equal(late.hash.digest('hex'), digest);
  });
});
