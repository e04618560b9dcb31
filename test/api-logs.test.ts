import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { brotliDecompressSync, createBrotliDecompress, createGunzip, gunzipSync } from 'node:zlib';
import type { MemoryBus } from '../src/live/memory.js';
import { rawRequest, within, type RawResponse } from './helpers/http.js';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

/** A GET/HEAD on a fresh connection. */
const raw = (server: { url: string }, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> =>
  rawRequest(server, method, path, { headers, agent: false });




/** An open log response, read incrementally (decoded when `decode` is given). */
interface OpenStream {
  status: number;
  headers: IncomingHttpHeaders;
  /** What arrived so far (after decoding). */
  received(): Buffer;
  /** Resolves with the whole body once the response ends. */
  ended: Promise<Buffer>;
  isEnded(): boolean;
  req: ClientRequest;
}

/** Opens a GET and resolves as soon as the status line and headers are in, before any body byte. */
function open(
  server: { url: string },
  path: string,
  headers: Record<string, string> = {},
  decode?: 'gzip' | 'br',
): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = request(`${server.url}${path}`, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const body: Readable = decode === 'gzip' ? res.pipe(createGunzip()) : decode === 'br' ? res.pipe(createBrotliDecompress()) : res;
      const ended = new Promise<Buffer>((resolveEnd, rejectEnd) => {
        body.on('data', (c: Buffer) => chunks.push(c));
        body.on('end', () => {
          done = true;
          resolveEnd(Buffer.concat(chunks));
        });
        body.on('error', rejectEnd);
        res.on('error', rejectEnd);
      });
      ended.catch(() => undefined);
      resolve({
        status: res.statusCode!,
        headers: res.headers,
        received: () => Buffer.concat(chunks),
        ended,
        isEnded: () => done,
        req,
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const text = (b: Buffer) => b.toString('utf8');

describe('log reading', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  test('text/plain; charset=utf-8 on every log path, the log as it is now', async () => {
    const build = await createJob(server, 'build');
    const run = await createJob(server, 'run');
    await append(server, build, 'build line\n');
    await append(server, run, 'run line\n');
    for (const [path, expected] of [
      [`/v2/actor-builds/${build}/log`, 'build line\n'],
      [`/v2/logs/${build}`, 'build line\n'],
      [`/v2/actor-runs/${run}/log`, 'run line\n'],
      [`/v2/logs/${run}`, 'run line\n'],
    ]) {
      const res = await raw(server, 'GET', path!);
      assert.equal(res.status, 200);
      assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(text(res.body), expected);
    }
    // An existing job with no output is an empty 200, not a 404.
    const empty = await createJob(server);
    const res = await raw(server, 'GET', `/v2/logs/${empty}`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
  });

  test('the default strips ANSI and control characters; raw=1 is byte-exact', async () => {
    const id = await createJob(server);
    const bytes = Buffer.concat([
      Buffer.from('\x1b[1;31mred\x1b[0m plain\ttab\r\n'),
      Buffer.from('\x1b]0;title\x07bell\x00nul\x7f\n'),
      Buffer.from('ünïcödé \u{1F600}\n'),
      Buffer.from([0xff, 0xfe, 0x0a]),
    ]);
    await append(server, id, bytes);
    const stripped = await raw(server, 'GET', `/v2/logs/${id}`);
    assert.deepEqual(stripped.body, Buffer.concat([Buffer.from('red plain\ttab\nbellnul\nünïcödé \u{1F600}\n'), Buffer.from([0xff, 0xfe, 0x0a])]));
    for (const flag of ['raw=1', 'raw=true', 'raw=TRUE']) {
      const res = await raw(server, 'GET', `/v2/logs/${id}?${flag}`);
      assert.deepEqual(res.body, bytes, flag);
    }
    assert.deepEqual((await raw(server, 'GET', `/v2/logs/${id}?raw=0`)).body, stripped.body);
    assert.deepEqual((await raw(server, 'GET', `/v2/logs/${id}?raw=false`)).body, stripped.body);
  });

  test('an escape sequence split across two appends is stripped, live and from the store', async () => {
    const id = await createJob(server);
    const follower = await open(server, `/v2/logs/${id}?stream=1`);
    const rawFollower = await open(server, `/v2/logs/${id}?stream=1&raw=1`);
    await append(server, id, 'a\x1b[3');
    await waitFor(() => text(follower.received()) === 'a' && rawFollower.received().length === 4, 10_000, 'the first half');
    await append(server, id, '2;1mb\x1b');
    await waitFor(() => text(follower.received()) === 'ab', 10_000, 'the second append');
    await append(server, id, '[0m\n');
    await finish(server, id);
    assert.equal(text(await within(follower.ended, 10_000, 'end')), 'ab\n');
    assert.equal(text(await within(rawFollower.ended, 10_000, 'end')), 'a\x1b[32;1mb\x1b[0m\n');
    assert.equal(text((await raw(server, 'GET', `/v2/logs/${id}`)).body), 'ab\n');
    assert.equal(text((await raw(server, 'GET', `/v2/logs/${id}?raw=1`)).body), 'a\x1b[32;1mb\x1b[0m\n');
  });

  test('stream=1 on a running job delivers appends live and ends right after the job is terminal', async () => {
    const id = await createJob(server, 'run');
    await append(server, id, 'before\n');
    const s = await open(server, `/v2/actor-runs/${id}/log?stream=1&raw=1`);
    assert.equal(s.status, 200);
    assert.equal(s.headers['content-type'], 'text/plain; charset=utf-8');
    await waitFor(() => text(s.received()) === 'before\n', 10_000, 'the stored bytes');
    for (let i = 1; i <= 3; i++) {
      await append(server, id, `live ${i}\n`);
      await waitFor(() => text(s.received()).endsWith(`live ${i}\n`), 10_000, `live append ${i}`);
      assert.equal(s.isEnded(), false);
    }
    await append(server, id, 'last\n');
    assert.equal((await finish(server, id, 'SUCCEEDED', 'run')).status, 200);
    const body = await within(s.ended, 10_000, 'the stream to end after the job finished');
    assert.equal(text(body), 'before\nlive 1\nlive 2\nlive 3\nlast\n');
  });

  test('stream=1 on a finished job is the same as without', async () => {
    const id = await createJob(server);
    await append(server, id, '\x1b[33mone\x1b[0m\n');
    await append(server, id, 'two\n');
    await finish(server, id, 'FAILED');
    for (const extra of ['', '&raw=1']) {
      const plain = await raw(server, 'GET', `/v2/logs/${id}?x=1${extra}`);
      const streamed = await within(raw(server, 'GET', `/v2/logs/${id}?stream=1${extra}`), 10_000, 'the stream');
      assert.equal(streamed.status, 200);
      assert.deepEqual(streamed.body, plain.body);
    }
  });

  test('headers go out before any log byte exists', async () => {
    const id = await createJob(server);
    const s = await within(open(server, `/v2/actor-builds/${id}/log?stream=1`), 10_000, 'the headers of an empty running log');
    assert.equal(s.status, 200);
    assert.equal(s.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(s.received().length, 0);
    assert.equal(s.isEnded(), false);
    await finish(server, id);
    assert.equal((await within(s.ended, 10_000, 'end')).length, 0);
  });

  test('download=1 names the file after the id', async () => {
    const id = await createJob(server);
    await append(server, id, 'x\n');
    const res = await raw(server, 'GET', `/v2/actor-builds/${id}/log?download=1`);
    assert.equal(res.headers['content-disposition'], `attachment; filename="${id}.log"`);
    assert.equal(text(res.body), 'x\n');
    const none = await raw(server, 'GET', `/v2/actor-builds/${id}/log?download=0`);
    assert.equal(none.headers['content-disposition'], undefined);
  });

  describe('Range', () => {
    let id: string;
    before(async () => {
      id = await createJob(server);
      await append(server, id, '0123456789');
      await append(server, id, 'abcdefghij');
      await finish(server, id);
    });

    test('bytes=N- resumes at an absolute offset', async () => {
      const res = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=5-' });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], 'bytes 5-19/20');
      assert.equal(res.headers['x-log-offset'], '5');
      assert.equal(text(res.body), '56789abcdefghij');
      assert.equal(res.headers['content-length'], '15');
    });

    test('bytes=N-M is a slice', async () => {
      const res = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=8-11' });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], 'bytes 8-11/20');
      assert.equal(text(res.body), '89ab');
    });

    test('bytes=-K is the last K bytes', async () => {
      const res = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=-4' });
      assert.equal(res.status, 206);
      assert.equal(res.headers['content-range'], 'bytes 16-19/20');
      assert.equal(text(res.body), 'ghij');
      const more = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=-100' });
      assert.equal(more.status, 206);
      assert.equal(more.headers['content-range'], 'bytes 0-19/20');
      assert.equal(text(more.body), '0123456789abcdefghij');
    });

    test('an unsatisfiable range is 416 with the length', async () => {
      for (const range of ['bytes=20-', 'bytes=100-200']) {
        const res = await raw(server, 'GET', `/v2/logs/${id}`, { range });
        assert.equal(res.status, 416, range);
        assert.equal(res.headers['content-range'], 'bytes */20');
        const body = JSON.parse(text(res.body)) as { error: { type: string } };
        assert.equal(body.error.type, 'range-not-satisfiable');
      }
    });

    test('a Range the server does not understand is ignored (200, whole log)', async () => {
      for (const range of ['items=0-1', 'bytes=0-1,4-5', 'bytes=9-3']) {
        const res = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range });
        assert.equal(res.status, 200, range);
        assert.equal(text(res.body), '0123456789abcdefghij');
      }
    });

    test('Range with stream=1 on a running job: from N, then live', async () => {
      const live = await createJob(server);
      await append(server, live, '0123456789');
      const s = await open(server, `/v2/logs/${live}?stream=1&raw=1`, { range: 'bytes=4-' });
      assert.equal(s.status, 206);
      assert.equal(s.headers['content-range'], 'bytes 4-9/*');
      assert.equal(s.headers['x-log-offset'], '4');
      await waitFor(() => text(s.received()) === '456789', 10_000, 'the stored tail');
      await append(server, live, 'LIVE\n');
      await waitFor(() => text(s.received()) === '456789LIVE\n', 10_000, 'the live append');
      assert.equal(s.isEnded(), false);
      await finish(server, live);
      assert.equal(text(await within(s.ended, 10_000, 'end')), '456789LIVE\n');
    });
  });

  test('a follower resuming exactly at the end gets only the new bytes', async () => {
    const live = await createJob(server, 'run');
    await append(server, live, '0123456789');
    const s = await open(server, `/v2/actor-runs/${live}/log?stream=1&raw=1`, { range: 'bytes=10-' });
    assert.equal(s.status, 206);
    assert.equal(s.headers['x-log-offset'], '10');
    await append(server, live, 'next\n');
    await waitFor(() => text(s.received()) === 'next\n', 10_000, 'the live append');
    await finish(server, live, 'SUCCEEDED', 'run');
    assert.equal(text(await within(s.ended, 10_000, 'end')), 'next\n');
  });

  test('ETag on a terminal log and If-None-Match → 304', async () => {
    const id = await createJob(server);
    await append(server, id, 'etag me\n');
    const running = await raw(server, 'GET', `/v2/logs/${id}`);
    assert.equal(running.headers.etag, undefined, 'no ETag while the log can still grow');
    await finish(server, id);
    const first = await raw(server, 'GET', `/v2/logs/${id}`);
    const etag = first.headers.etag;
    assert.ok(etag && /^".+"$/.test(etag), `strong ETag: ${etag}`);
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, '*']) {
      const res = await raw(server, 'GET', `/v2/logs/${id}`, { 'if-none-match': inm });
      assert.equal(res.status, 304, inm);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers.etag, etag);
    }
    const changed = await raw(server, 'GET', `/v2/logs/${id}`, { 'if-none-match': '"something-else"' });
    assert.equal(changed.status, 200);
    assert.equal(text(changed.body), 'etag me\n');
    // The raw bytes are another representation with another ETag.
    const rawRes = await raw(server, 'GET', `/v2/logs/${id}?raw=1`);
    assert.ok(rawRes.headers.etag);
    assert.notEqual(rawRes.headers.etag, etag);
    assert.equal((await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { 'if-none-match': etag })).status, 200);
  });

  test('Accept-Encoding gzip and br give correctly compressed bodies', async () => {
    const id = await createJob(server);
    const line = (i: number) => `${String(i).padStart(6, '0')} \x1b[32mcompressible log line\x1b[0m\n`;
    const all = Array.from({ length: 2000 }, (_, i) => line(i)).join('');
    await append(server, id, all);
    await finish(server, id);
    const stripped = all.replace(/\x1b\[\d+m/g, '');
    for (const [accept, expected, unzip] of [
      ['gzip', 'gzip', gunzipSync],
      ['gzip, deflate, br', 'gzip', gunzipSync],
      ['br', 'br', brotliDecompressSync],
      ['gzip;q=0, br', 'br', brotliDecompressSync],
    ] as const) {
      for (const [query, want] of [
        ['', stripped],
        ['?raw=1', all],
      ]) {
        const res = await raw(server, 'GET', `/v2/logs/${id}${query}`, { 'accept-encoding': accept });
        assert.equal(res.status, 200);
        assert.equal(res.headers['content-encoding'], expected, accept);
        assert.match(String(res.headers.vary), /Accept-Encoding/i);
        assert.ok(res.body.length < Buffer.byteLength(want) / 4, 'actually compressed');
        assert.equal(text(unzip(res.body)), want, `${accept} ${query}`);
      }
    }
    const identity = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { 'accept-encoding': 'identity' });
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.equal(text(identity.body), all);
    // Global fetch decodes transparently.
    assert.equal(await (await fetch(`${server.url}/v2/logs/${id}?raw=1`)).text(), all);
  });

  for (const encoding of ['gzip', 'br'] as const) {
    test(`streaming with ${encoding}: a live append arrives decodable before the job ends`, async () => {
      const id = await createJob(server);
      await append(server, id, 'stored\n');
      const s = await open(server, `/v2/logs/${id}?stream=1`, { 'accept-encoding': encoding }, encoding);
      assert.equal(s.headers['content-encoding'], encoding);
      await waitFor(() => text(s.received()) === 'stored\n', 10_000, 'the stored bytes, decoded');
      await append(server, id, '\x1b[1mlive\x1b[0m line\n');
      await waitFor(() => text(s.received()) === 'stored\nlive line\n', 10_000, 'the live append, decoded');
      assert.equal(s.isEnded(), false);
      await finish(server, id);
      assert.equal(text(await within(s.ended, 10_000, 'end')), 'stored\nlive line\n');
    });
  }

  test('HEAD returns headers only', async () => {
    const id = await createJob(server);
    await append(server, id, 'twelve bytes');
    const running = await within(raw(server, 'HEAD', `/v2/logs/${id}?stream=1`), 10_000, 'HEAD on a running stream');
    assert.equal(running.status, 200);
    assert.equal(running.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(running.body.length, 0);
    await finish(server, id);
    const res = await raw(server, 'HEAD', `/v2/actor-builds/${id}/log?raw=1&download=1`);
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers['content-length'], '12');
    assert.equal(res.headers['content-disposition'], `attachment; filename="${id}.log"`);
    assert.ok(res.headers.etag);
    const ranged = await raw(server, 'HEAD', `/v2/logs/${id}?raw=1`, { range: 'bytes=4-' });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-range'], 'bytes 4-11/12');
    assert.equal(ranged.body.length, 0);
  });

  test('a retried append with the same X-Log-Offset is not duplicated', async () => {
    const id = await createJob(server);
    const first = await append(server, id, 'hello ', 0);
    assert.equal(first.status, 200);
    assert.deepEqual(((await first.json()) as { data: object }).data, { id, offset: 0, length: 6, duplicate: false });
    const retry = await append(server, id, 'hello ', 0);
    assert.equal(retry.status, 200);
    assert.equal(retry.headers.get('x-log-length'), '6');
    assert.deepEqual(((await retry.json()) as { data: object }).data, { id, offset: 0, length: 6, duplicate: true });
    assert.equal((await append(server, id, 'world\n', 6)).status, 200);
    // A retry of an older chunk after newer ones landed is still a no-op.
    assert.equal((await append(server, id, 'hello ', 0)).status, 200);
    assert.equal((await append(server, id, 'world\n', 6)).status, 200);
    assert.equal(text((await raw(server, 'GET', `/v2/logs/${id}`)).body), 'hello world\n');
  });

  test('many concurrent stream followers of one log get identical complete bodies', async () => {
    const id = await createJob(server);
    await append(server, id, 'head\n');
    const N = 50;
    const streams = await within(
      Promise.all(Array.from({ length: N }, (_, i) => open(server, `/v2/logs/${id}?stream=1${i % 2 ? '&raw=1' : ''}`))),
      30_000,
      `${N} streams to open`,
    );
    assert.ok(streams.every((s) => s.status === 200));
    const expectedRaw: string[] = ['head\n'];
    for (let i = 0; i < 5; i++) {
      const chunk = `\x1b[2mline ${i}\x1b[0m ${'.'.repeat(i * 5000)}\n`;
      expectedRaw.push(chunk);
      await append(server, id, chunk);
    }
    await finish(server, id);
    const bodies = await within(Promise.all(streams.map((s) => s.ended)), 30_000, 'all streams to end');
    const rawBody = expectedRaw.join('');
    const stripped = rawBody.replace(/\x1b\[\d+m/g, '');
    bodies.forEach((b, i) => assert.equal(text(b), i % 2 ? rawBody : stripped, `follower ${i}`));
  });
});

describe('log followers and the live bus', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.stop();
  });

  test('a disconnected stream follower frees its subscription', async () => {
    const bus = server.bus as MemoryBus;
    assert.equal(bus.subscribedJobs, 0);
    const id = await createJob(server);
    const s = await open(server, `/v2/logs/${id}?stream=1`);
    await append(server, id, 'something\n');
    await waitFor(() => s.received().length > 0, 10_000, 'the first bytes');
    assert.equal(bus.subscribedJobs, 1);
    s.req.destroy();
    await waitFor(() => bus.subscribedJobs === 0, 10_000, 'the subscription to be dropped');
    // Appending afterwards still works and no one is left listening.
    assert.equal((await append(server, id, 'more\n')).status, 200);
    assert.equal(bus.subscribedJobs, 0);
  });

  test('a follower that aborts before any byte also frees its subscription', async () => {
    const bus = server.bus as MemoryBus;
    const ids = [await createJob(server), await createJob(server)];
    const streams = await Promise.all(ids.map((id) => open(server, `/v2/logs/${id}?stream=1`, { 'accept-encoding': 'gzip' })));
    await waitFor(() => bus.subscribedJobs === 2, 10_000, 'two subscriptions');
    for (const s of streams) s.req.destroy();
    await waitFor(() => bus.subscribedJobs === 0, 10_000, 'the subscriptions to be dropped');
  });

  test('a finished stream frees its subscription too', async () => {
    const bus = server.bus as MemoryBus;
    const id = await createJob(server);
    const s = await open(server, `/v2/logs/${id}?stream=1`);
    await waitFor(() => bus.subscribedJobs === 1, 10_000, 'the subscription');
    await finish(server, id);
    await within(s.ended, 10_000, 'end');
    await waitFor(() => bus.subscribedJobs === 0, 10_000, 'the subscription to be dropped');
  });
});
