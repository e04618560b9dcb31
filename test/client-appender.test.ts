// The producer side of `buildlog run` in isolation: the spilling byte queue and the exactly-once appender.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BuildlogApi, NetworkError } from '../src/client/api.js';
import { LogAppender } from '../src/client/appender.js';
import { Backoff } from '../src/client/backoff.js';
import { ByteQueue } from '../src/client/byte-queue.js';
import { api, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

/** Deterministic pseudo-random bytes. */
function bytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed || 1;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >> 16;
  }
  return b;
}

describe('ByteQueue', () => {
  test('keeps order across memory and the spill file, with peeks and partial consumes in between', () => {
    const q = new ByteQueue({ memoryLimit: 1000 });
    const pushed: Buffer[] = [];
    const taken: Buffer[] = [];
    for (let i = 0; i < 400; i++) {
      const chunk = bytes(i, (i * 37) % 700);
      q.push(chunk);
      pushed.push(chunk);
      if (i % 3 === 0) {
        const head = Buffer.concat(q.peek(450 + (i % 200)));
        assert.ok(head.equals(Buffer.concat(q.peek(head.length))), 'peek does not remove');
        const n = Math.floor(head.length / 2);
        taken.push(Buffer.from(head.subarray(0, n)));
        q.consume(n);
      }
    }
    assert.ok(q.spilledBytes > 0, 'the file was used');
    while (q.length > 0) {
      const head = Buffer.concat(q.peek(333));
      taken.push(Buffer.from(head));
      q.consume(head.length);
    }
    assert.ok(Buffer.concat(taken).equals(Buffer.concat(pushed)));
    q.close();
  });
});

/** An API whose answers get lost (the append was stored) or whose requests fail (it was not), on cue. */
class FlakyApi extends BuildlogApi {
  calls = 0;
  constructor(
    config: ConstructorParameters<typeof BuildlogApi>[0],
    private readonly plan: (call: number) => 'ok' | 'lose-answer' | 'fail',
  ) {
    super(config);
  }
  override async append(id: string, data: Buffer, offset: number, signal?: AbortSignal) {
    const what = this.plan(++this.calls);
    if (what === 'fail') throw new NetworkError(this.url, new Error('connection refused (simulated)'));
    const result = await super.append(id, data, offset, signal);
    if (what === 'lose-answer') throw new NetworkError(this.url, new Error('socket hang up (simulated)'));
    return result;
  }
}

describe('LogAppender', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  const rawLog = async (id: string) => Buffer.from(await (await api(server)(`/v2/logs/${id}?raw=1`)).arrayBuffer());

  test('lost answers and failed requests: every byte stored exactly once, in order', async () => {
    const id = await createJob(server);
    const flaky = new FlakyApi({ url: server.url, token: server.token }, (n) =>
      n % 4 === 1 ? 'lose-answer' : n % 4 === 2 ? 'fail' : 'ok',
    );
    const warnings: string[] = [];
    const appender = new LogAppender({
      api: flaky,
      kind: 'build',
      jobId: id,
      lingerMs: 1,
      maxChunkBytes: 5000,
      memoryLimit: 3000,
      backoff: new Backoff(1, 5),
      onWarning: (m) => warnings.push(m),
    });
    const written: Buffer[] = [];
    for (let i = 0; i < 60; i++) {
      const chunk = bytes(i + 1, 200 + ((i * 131) % 900));
      written.push(chunk);
      appender.write(chunk);
      // Let some requests go out (and fail) between writes, so retries carry more than the lost attempt.
      if (i % 5 === 0) await new Promise((r) => setTimeout(r, 3));
    }
    assert.equal(await appender.drain(20_000), 'delivered', warnings.join('\n'));
    appender.close();
    const expected = Buffer.concat(written);
    assert.equal(appender.acked, expected.length);
    assert.ok((await rawLog(id)).equals(expected), 'the log is the written bytes, once');
    assert.ok(flaky.calls > 10, 'there were retries');
    assert.ok(warnings.some((w) => /log upload resumed/.test(w)));
  });

  test('a job finished elsewhere: onTerminal, nothing more is sent, drain says so', async () => {
    const id = await createJob(server);
    let terminal: string | null = null;
    const appender = new LogAppender({
      api: new BuildlogApi({ url: server.url, token: server.token }),
      kind: 'build',
      jobId: id,
      onTerminal: (s) => (terminal = s),
    });
    appender.write(Buffer.from('before\n'));
    assert.equal(await appender.drain(10_000), 'delivered');
    await finish(server, id, 'ABORTED');
    appender.write(Buffer.from('after\n'));
    assert.equal(await appender.drain(10_000), 'terminal');
    assert.equal(terminal, 'ABORTED');
    appender.close();
    assert.equal((await rawLog(id)).toString(), 'before\n');
  });

  test('heartbeats keep a quiet job alive past the server inactivity timeout', async () => {
    const quiet = await startTestServer({ inactivityTimeoutSecs: 1 });
    try {
      const client = new BuildlogApi({ url: quiet.url, token: quiet.token });
      const alive = await createJob(quiet);
      const orphan = await createJob(quiet);
      const appender = new LogAppender({ api: client, kind: 'build', jobId: alive, heartbeatMs: 100 });
      appender.write(Buffer.from('started\n'));
      assert.equal(await appender.drain(10_000), 'delivered');
      // The orphan (no producer) times out: the server holds this answer until it does.
      assert.equal((await client.getJob('build', orphan, { waitForFinish: 30 })).status, 'TIMED-OUT');
      // Held for two more seconds, well past the timeout again: the heartbeats keep the other one running.
      assert.equal((await client.getJob('build', alive, { waitForFinish: 2 })).status, 'RUNNING');
      appender.close();
    } finally {
      await quiet.stop();
    }
  });
});
