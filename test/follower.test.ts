import { afterEach, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobService } from '../src/core/service.js';
import type { JobRecord } from '../src/core/job.js';
import { LogFollower, type FollowOptions } from '../src/live/follower.js';
import { MemoryBus } from '../src/live/memory.js';
import { SqliteStore } from '../src/store/sqlite.js';
import type { Store, UserRecord } from '../src/store/store.js';
import { strippedLines, strippedView } from '../src/text/stripped-view.js';
import { waitFor } from './helpers/server.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

interface Env {
  dir: string;
  store: SqliteStore;
  bus: MemoryBus;
  service: JobService;
  user: UserRecord;
  newJob(): Promise<JobRecord>;
  follow(job: JobRecord, opts?: Partial<FollowOptions>): LogFollower;
}

let env: Env;
const followers: LogFollower[] = [];

async function makeEnv(retentionChars = 50_000_000): Promise<Env> {
  const dir = mkdtempSync(join(tmpdir(), 'buildlog-follower-'));
  const store = new SqliteStore({ dataDir: dir, retentionChars });
  const bus = new MemoryBus();
  const service = new JobService(store, bus);
  const user: UserRecord = { id: 'user0000000000001', username: 'tester', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
  await store.createUser(user);
  return {
    dir,
    store,
    bus,
    service,
    user,
    newJob: () => service.create({ kind: 'build', user }),
    follow(job, opts = {}) {
      const f = new LogFollower({ store, bus, jobId: job.id, from: 0, follow: true, ...opts });
      followers.push(f);
      return f;
    },
  };
}

async function disposeEnv(e: Env): Promise<void> {
  for (const f of followers.splice(0)) f.destroy();
  e.service.close();
  await e.store.close();
  await e.bus.close();
  rmSync(e.dir, { recursive: true, force: true });
}

/** Consumes a stream in flowing mode and records everything. */
class Sink {
  readonly chunks: Buffer[] = [];
  received = 0;
  ended = false;
  closed = false;
  error: Error | null = null;
  readonly done: Promise<void>;

  constructor(readonly stream: LogFollower) {
    stream.on('data', (c: Buffer) => {
      this.chunks.push(c);
      this.received += c.length;
    });
    this.done = new Promise((resolve) => {
      stream.on('end', () => {
        this.ended = true;
        resolve();
      });
      stream.on('error', (err) => {
        this.error = err;
        resolve();
      });
      stream.on('close', () => {
        this.closed = true;
        resolve();
      });
    });
  }

  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Waits (bounded) until `n` bytes arrived. */
  async until(n: number, what = `${n} bytes`): Promise<void> {
    await waitFor(() => this.received >= n || this.error !== null, 10_000, what);
    if (this.error) throw this.error;
  }

  /** Waits for the end and checks it was a clean one. */
  async end(): Promise<Buffer> {
    await this.done;
    if (this.error) throw this.error;
    assert.ok(this.ended, 'the stream ended cleanly');
    return this.bytes;
  }
}

/** Distinct, recognisable content for chunk `i` of `size` bytes (a gap or duplicate shows in a compare). */
function chunkBytes(i: number, size: number): Buffer {
  const head = b(`<${i}:`);
  const out = Buffer.alloc(size);
  for (let k = 0; k < size; k++) out[k] = k < head.length ? head[k]! : 33 + ((i * 31 + k) % 90);
  if (size > 0) out[size - 1] = 0x3e; // '>'
  return out;
}

describe('LogFollower over SqliteStore + MemoryBus', () => {
  beforeEach(async () => {
    env = await makeEnv();
  });
  afterEach(async () => {
    await disposeEnv(env);
  });

  describe('without follow', () => {
    test('reads a stored log from an offset and ends, without subscribing', async () => {
      const job = await env.newJob();
      for (const p of ['hello ', 'wörld', '\n', 'line two\n']) await env.service.append(job, b(p));
      const all = b('hello wörld\nline two\n');

      const whole = new Sink(env.follow(job, { follow: false }));
      assert.equal(env.bus.subscribedJobs, 0);
      assert.ok((await whole.end()).equals(all));

      const fromOffset = env.follow(job, { follow: false, from: 6 });
      const sink = new Sink(fromOffset);
      assert.ok((await sink.end()).equals(all.subarray(6)));
      assert.equal(fromOffset.nextOffset, all.length);

      // A range with an end.
      const ranged = new Sink(env.follow(job, { follow: false, from: 3, until: 9 }));
      assert.ok((await ranged.end()).equals(all.subarray(3, 9)));

      // Past the end: nothing, and a clean end.
      const past = new Sink(env.follow(job, { follow: false, from: all.length + 100 }));
      assert.equal((await past.end()).length, 0);
      assert.equal(env.bus.subscribedJobs, 0);
    });

    test('pages through a log larger than one store read', async () => {
      const job = await env.newJob();
      const parts = Array.from({ length: 40 }, (_, i) => chunkBytes(i, 10_000 + i));
      for (const p of parts) await env.service.append(job, p);
      const all = Buffer.concat(parts);
      const sink = new Sink(env.follow(job, { follow: false, pageBytes: 7_777, from: 1234 }));
      assert.ok((await sink.end()).equals(all.subarray(1234)));
    });

    test('an offset before the retention window starts at the window', async () => {
      await disposeEnv(env);
      env = await makeEnv(10);
      const job = await env.newJob();
      await env.service.append(job, b('0123456789'));
      await env.service.append(job, b('abcdef'));
      const f = env.follow(job, { follow: false, from: 0 });
      const sink = new Sink(f);
      assert.equal((await sink.end()).toString(), '6789abcdef');
      assert.equal(f.nextOffset, 16);
    });
  });

  describe('follow', () => {
    test('a terminal job is served as it is and the stream ends', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('all there is\n'));
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      const sink = new Sink(env.follow(job, { from: 4 }));
      assert.equal((await sink.end()).toString(), 'there is\n');
      assert.equal(env.bus.subscribedJobs, 0);
    });

    test('stored bytes, then later appends, ending once the job is terminal', async () => {
      let job = await env.newJob();
      await env.service.append(job, b('stored 1\n'));
      await env.service.append(job, b('stored 2\n'));
      const follower = env.follow(job, { from: 0 });
      const sink = new Sink(follower);
      await sink.until(18, 'the stored bytes');
      assert.equal(sink.bytes.toString(), 'stored 1\nstored 2\n');
      assert.equal(env.bus.subscribedJobs, 1);

      const later = ['live 1\n', 'live 2 é🚀\n', 'live 3\n'];
      let expected = 'stored 1\nstored 2\n';
      for (const l of later) {
        await env.service.append(job, b(l));
        expected += l;
        await sink.until(Buffer.byteLength(expected), JSON.stringify(l));
        assert.equal(sink.bytes.toString(), expected);
      }
      // A non-terminal status change does not end the stream.
      job = await env.service.setStatus(job, { status: 'ABORTING' });
      await env.service.append(job, b('cleaning up\n'));
      expected += 'cleaning up\n';
      await sink.until(Buffer.byteLength(expected), 'bytes after ABORTING');
      assert.equal(sink.ended, false);
      // The last bytes and the final status back to back: all bytes, then the end.
      await env.service.append(job, b('last words'));
      expected += 'last words';
      await env.service.setStatus(job, { status: 'ABORTED' });
      assert.equal((await sink.end()).toString(), expected);
      assert.equal(follower.nextOffset, Buffer.byteLength(expected));
      assert.equal(env.bus.subscribedJobs, 0);
    });

    test('a follower created while appends are in flight misses nothing and repeats nothing', async () => {
      const job = await env.newJob();
      const parts = Array.from({ length: 200 }, (_, i) => chunkBytes(i, 1 + ((i * 37) % 300)));
      const pending: Promise<unknown>[] = [];
      let sink: Sink | null = null;
      for (const [i, p] of parts.entries()) {
        pending.push(env.service.append(job, p));
        if (i === 100) sink = new Sink(env.follow(job, { from: 0 }));
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(pending);
      const all = Buffer.concat(parts);
      await sink!.until(all.length);
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      assert.ok((await sink!.end()).equals(all));
    });

    test('an append event that skips ahead is filled from the store, with no gap and no duplicate', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('known '));
      const sink = new Sink(env.follow(job, { from: 0 }));
      await sink.until(6, 'the stored bytes');

      // Two appends straight to the store; only the second is published (the first notice was lost).
      const first = await env.store.append(job.id, b('missed '));
      const secondData = b('seen ');
      const second = await env.store.append(job.id, secondData);
      assert.equal(first.kind, 'appended');
      assert.equal(second.kind, 'appended');
      if (second.kind !== 'appended') return;
      assert.equal(second.start, 13);
      env.bus.publish({ type: 'append', jobId: job.id, start: second.start, end: second.end, data: secondData });
      await sink.until(18, 'the skipped range and the event');
      assert.equal(sink.bytes.toString(), 'known missed seen ');

      // A hint without data, skipping ahead again.
      await env.store.append(job.id, b('quiet '));
      const hinted = await env.store.append(job.id, b('hint '));
      assert.equal(hinted.kind, 'appended');
      if (hinted.kind !== 'appended') return;
      env.bus.publish({ type: 'append', jobId: job.id, start: hinted.start, end: hinted.end });
      await sink.until(29, 'the range announced by a hint');
      assert.equal(sink.bytes.toString(), 'known missed seen quiet hint ');

      // Stale and overlapping notices are not delivered twice.
      env.bus.publish({ type: 'append', jobId: job.id, start: 0, end: 6, data: b('known ') });
      env.bus.publish({ type: 'append', jobId: job.id, start: first.kind === 'appended' ? first.start : 6, end: 13, data: b('missed ') });
      const overlap = await env.store.append(job.id, b('tail'));
      assert.equal(overlap.kind, 'appended');
      // An event covering [24, 33): the last 5 bytes are known, the last 4 are new.
      env.bus.publish({ type: 'append', jobId: job.id, start: 24, end: 33, data: b('hint tail') });
      await sink.until(33, 'the overlapping event');
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      assert.equal((await sink.end()).toString(), 'known missed seen quiet hint tail');
    });

    test('a slow consumer gets every byte of a 5 MB log exactly once, in order', async () => {
      const job = await env.newJob();
      const follower = env.follow(job, { from: 0 });
      const parts: Buffer[] = [];
      let total = 0;
      for (let i = 0; total < 5 * 1024 * 1024; i++) {
        const p = chunkBytes(i, 1 + ((i * 7919) % 8192));
        parts.push(p);
        total += p.length;
      }
      const half = Math.floor(parts.length / 2);
      /** Appends like a fast producer: batches issued in one tick (group-committed), in order. */
      const produce = async (from: number, to: number) => {
        for (let i = from; i < to; i += 64) {
          await Promise.all(parts.slice(i, Math.min(to, i + 64)).map((p) => env.service.append(job, p)));
        }
      };
      // Nobody reads while the first half (far more than the follower may queue) is appended.
      await produce(0, half);
      assert.equal(follower.readableLength, 0);
      // Then a consumer that reads slowly while the second half is produced.
      const received: Buffer[] = [];
      let n = 0;
      const consumer = (async () => {
        for await (const chunk of follower) {
          received.push(chunk as Buffer);
          if (++n % 3 === 0) await new Promise((r) => setImmediate(r));
        }
      })();
      await produce(half, parts.length);
      const all = Buffer.concat(parts);
      assert.equal(all.length, total);
      await waitFor(() => received.reduce((s, c) => s + c.length, 0) >= total, 20_000, 'all 5 MB');
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      await consumer;
      const got = Buffer.concat(received);
      assert.equal(got.length, all.length);
      assert.ok(got.equals(all), 'every byte exactly once, in order');
      assert.equal(follower.nextOffset, total);
      assert.equal(env.bus.subscribedJobs, 0);
    });

    test('many followers of one busy log each receive it exactly', async () => {
      const job = await env.newJob();
      const sinks = Array.from({ length: 8 }, (_, k) => new Sink(env.follow(job, { from: 0, maxQueuedBytes: 4096 * (k + 1) })));
      const parts = Array.from({ length: 600 }, (_, i) => chunkBytes(i, 1 + ((i * 131) % 3000)));
      const pending: Promise<unknown>[] = [];
      for (const [i, p] of parts.entries()) {
        pending.push(env.service.append(job, p));
        if (i % 7 === 0) await Promise.resolve();
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(pending);
      const all = Buffer.concat(parts);
      // Every follower catches up before the job ends (nothing waits for the final status to be woken).
      for (const s of sinks) await s.until(all.length, 'a follower to catch up');
      assert.equal(env.bus.subscribedJobs, 1);
      await env.service.setStatus(job, { status: 'FAILED' });
      for (const s of sinks) assert.ok((await s.end()).equals(all));
      assert.equal(env.bus.subscribedJobs, 0);
    });
  });

  describe('ending early', () => {
    test('destroying a follower unsubscribes it', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('some bytes'));
      const a = env.follow(job);
      const b2 = env.follow(job);
      const sinkA = new Sink(a);
      const sinkB = new Sink(b2);
      await sinkA.until(10);
      await sinkB.until(10);
      assert.equal(env.bus.subscribedJobs, 1);
      a.destroy();
      await once(a, 'close');
      assert.equal(sinkA.error, null);
      assert.equal(env.bus.subscribedJobs, 1, 'the other follower stays');
      // Appends go on for the other follower and do not touch the destroyed one.
      await env.service.append(job, b(' more'));
      await sinkB.until(15);
      assert.equal(sinkA.received, 10);
      b2.destroy();
      await once(b2, 'close');
      assert.equal(env.bus.subscribedJobs, 0);
      // A follower destroyed before it even started.
      const c = env.follow(job);
      assert.equal(env.bus.subscribedJobs, 1);
      c.destroy();
      assert.equal(env.bus.subscribedJobs, 0);
      await once(c, 'close');
      await env.service.append(job, b('!'));
    });

    test('stop() ends the stream cleanly after what was sent', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('before stop\n'));
      const f = env.follow(job);
      const sink = new Sink(f);
      await sink.until(12);
      f.stop();
      assert.equal((await sink.end()).toString(), 'before stop\n');
      assert.equal(f.nextOffset, 12);
      assert.equal(env.bus.subscribedJobs, 0);
      // Nothing after the stop, and appends keep working.
      await env.service.append(job, b('after\n'));
      assert.equal(sink.received, 12);
      f.stop(); // idempotent
    });

    test('stop() right after creation ends with nothing', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('data'));
      const f = env.follow(job);
      const sink = new Sink(f);
      f.stop();
      assert.equal((await sink.end()).length, 0);
      assert.equal(f.nextOffset, 0);
      assert.equal(env.bus.subscribedJobs, 0);
    });

    test('stop() while a store read is in flight ends cleanly and emits nothing more', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('0123456789'));
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      let reads = 0;
      const store = env.store;
      // The real store, with its reads held at a gate.
      const gated = new Proxy(store, {
        get(target, prop) {
          if (prop === 'readLog') {
            return async (id: string, from: number, max: number) => {
              reads++;
              await gate;
              return target.readLog(id, from, max);
            };
          }
          const value = Reflect.get(target, prop) as unknown;
          return typeof value === 'function' ? value.bind(target) : value;
        },
      }) as Store;
      const f = new LogFollower({ store: gated, bus: env.bus, jobId: job.id, from: 2, follow: true });
      followers.push(f);
      const sink = new Sink(f);
      await waitFor(() => reads === 1, 5000, 'the first store read');
      f.stop();
      release();
      assert.equal((await sink.end()).length, 0);
      assert.equal(f.nextOffset, 2);
      assert.equal(env.bus.subscribedJobs, 0);
    });
  });

  describe('the stripped view', () => {
    test('followers at a line start share one stripped copy of each append; every follower gets exactly its view', async () => {
      const job = await env.newJob();
      const stored = b('\x1b[1mbuilding\x1b[0m\nsection_start:1700000000:compile\r\x1b[0KCompiling\n');
      await env.service.append(job, stored);
      // From the start (at a line start), and from inside an escape sequence (a Range in the middle of `\x1b[1m`).
      const whole = new Sink(env.follow(job, { from: 0, view: 'text' }));
      const alsoWhole = new Sink(env.follow(job, { from: 0, view: 'text' }));
      const inside = new Sink(env.follow(job, { from: 2, view: 'text' }));
      const raw = new Sink(env.follow(job, { from: 0 }));
      await whole.until(strippedView(stored).length, 'the stored part');
      await alsoWhole.until(strippedView(stored).length, 'the stored part');
      await raw.until(stored.length, 'the stored part, raw');

      const appends = [
        b('\x1b[32mok\x1b[0m line\n'),
        // Ends inside an escape sequence: the next append completes it.
        b('half \x1b[3'),
        b('1mred\x1b[0m\n'),
        b('\x1b]0;title\x07'),
        b('plain tail\n'),
        b('section_end:1700000001:compile\r\x1b[0K\n'),
      ];
      let all = stored;
      for (const a of appends) {
        await env.service.append(job, a);
        all = Buffer.concat([all, a]);
      }
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      const [w, aw, i, r] = await Promise.all([whole.end(), alsoWhole.end(), inside.end(), raw.end()]);
      assert.equal(w.toString(), strippedView(all).toString());
      assert.equal(aw.toString(), w.toString());
      assert.equal(i.toString(), strippedView(all.subarray(2)).toString());
      assert.ok(r.equals(all));
      // The whole-line append was stripped once for both followers that read it live: the same Buffer.
      assert.equal(whole.chunks.filter((c) => c.toString() === 'ok line\n').length, 1);
      const shared = whole.chunks.find((c) => c.toString() === 'ok line\n')!;
      assert.ok(alsoWhole.chunks.includes(shared), 'the second follower got the very same Buffer');
    });

    test('a stripped follower stopped before it has read anything ends cleanly, empty: its notice comes with the first read', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('stored\n'));
      let asked = 0;
      const follower = env.follow(job, { from: 0, view: 'text', notice: () => (asked++, b('[notice]\n')) });
      const sink = new Sink(follower);
      follower.stop();
      assert.equal((await sink.end()).toString(), '');
      assert.equal(follower.stopped, true);
      assert.deepEqual(await follower.opened, { kind: 'build', status: 'RUNNING', start: 0, length: 7 }, 'the first read was made');
      assert.equal(asked, 1, 'and the notice asked for, but not pushed after the end');
    });

    test('a stripped follower starts with the notice for the start its first read found; an append that strips to nothing does not stall it', async () => {
      const job = await env.newJob();
      const sink = new Sink(env.follow(job, { from: 0, view: 'text', notice: (start) => b(`[notice from ${start}]\n`) }));
      await sink.until(16, 'the notice');
      await env.service.append(job, b('\x1b[2K\x1b[1G'));
      await env.service.append(job, b('text\n'));
      await env.service.setStatus(job, { status: 'SUCCEEDED' });
      assert.equal((await sink.end()).toString(), '[notice from 0]\ntext\n');
    });

    test('opened: the state of the first read (after subscribing); null and an empty end for a log that is gone', async () => {
      const job = await env.newJob();
      await env.service.append(job, b('0123456789'));
      const follower = env.follow(job, { from: 0 });
      assert.deepEqual(await follower.opened, { kind: 'build', status: 'RUNNING', start: 0, length: 10 });
      const gone = env.follow({ ...job, id: 'nosuchjob000000001' }, { from: 0 });
      const sink = new Sink(gone);
      assert.equal(await gone.opened, null);
      assert.equal((await sink.end()).length, 0);
      assert.equal(sink.error, null);
    });
  });

  test('strippedLines: one stripped Buffer per chunk from a line start to a line start, else null', () => {
    const chunk = b('\x1b[1mbold\x1b[0m\n');
    const once = strippedLines(chunk);
    assert.equal(once?.toString(), 'bold\n');
    assert.equal(strippedLines(chunk), once, 'computed once per chunk');
    assert.equal(strippedLines(b('no newline at the end')), null);
    assert.equal(strippedLines(b('ends inside \x1b[3')), null);
    assert.equal(strippedLines(b('section_start:1700000000:a\r\x1b[0KHeader\n'))?.toString(), strippedView(b('section_start:1700000000:a\r\x1b[0KHeader\n')).toString());
  });

});
