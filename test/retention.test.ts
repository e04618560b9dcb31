import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { countChars, DEFAULT_RETENTION_CHARS, planTrim, type StoredChunk } from '../src/core/retention.js';
import { rawRequest, type RawResponse } from './helpers/http.js';
import { append, createJob, startTestServer, type TestServer } from './helpers/server.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Chunks laid out contiguously from `offset`. */
function layout(offset: number, ...parts: (string | Buffer)[]): StoredChunk[] {
  const out: StoredChunk[] = [];
  let pos = offset;
  for (const p of parts) {
    const data = typeof p === 'string' ? b(p) : p;
    out.push({ offset: pos, data });
    pos += data.length;
  }
  return out;
}

describe('countChars', () => {
  test('empty and ASCII', () => {
    assert.equal(countChars(new Uint8Array(0)), 0);
    assert.equal(countChars(b('a')), 1);
    assert.equal(countChars(b('hello world\n\t\r')), 14);
    assert.equal(countChars(Buffer.from([0, 0, 0])), 3);
  });

  test('multi-byte sequences count once', () => {
    assert.equal(countChars(b('é')), 1); // 2 bytes
    assert.equal(countChars(b('漢')), 1); // 3 bytes
    assert.equal(countChars(b('🚀')), 1); // 4 bytes
    assert.equal(countChars(b('aé漢🚀z')), 5);
    const s = 'Žluťoučký kůň úpěl ďábelské ódy 🚀🚀';
    assert.equal(countChars(b(s)), Array.from(s).length);
  });

  test('a sequence split in two: the lead part counts, the continuation part does not', () => {
    const rocket = b('🚀');
    assert.equal(countChars(rocket.subarray(0, 1)), 1);
    assert.equal(countChars(rocket.subarray(0, 3)), 1);
    assert.equal(countChars(rocket.subarray(1)), 0);
    assert.equal(countChars(rocket.subarray(3)), 0);
    // Together they count once.
    assert.equal(countChars(rocket.subarray(0, 2)) + countChars(rocket.subarray(2)), 1);
  });

  test('invalid bytes: every non-continuation byte starts a character', () => {
    assert.equal(countChars(Buffer.from([0xff, 0xfe, 0xc0])), 3);
    assert.equal(countChars(Buffer.from([0x80, 0xbf, 0x80])), 0); // stray continuation bytes
    assert.equal(countChars(Buffer.from([0x41, 0x80, 0x42])), 2);
  });

  test('works on a plain Uint8Array and a subarray view', () => {
    const u = new Uint8Array([0x61, 0xc3, 0xa9, 0x62]);
    assert.equal(countChars(u), 3);
    assert.equal(countChars(u.subarray(2)), 1);
  });

  test('the default window is Apify\'s 5,000,000 characters', () => {
    assert.equal(DEFAULT_RETENTION_CHARS, 5_000_000);
  });
});

describe('planTrim', () => {
  test('nothing to drop: the window stays, nothing is deleted', () => {
    const chunks = layout(0, 'abc', 'def');
    assert.deepEqual(planTrim(chunks, 0, 0), { start: 0, dropBefore: 0, charsDropped: 0, done: true });
  });

  test('drops characters inside the first chunk', () => {
    const chunks = layout(0, 'abcdef', 'ghi');
    assert.deepEqual(planTrim(chunks, 0, 4), { start: 4, dropBefore: 0, charsDropped: 4, done: true });
  });

  test('a cut exactly at a chunk boundary deletes the whole first chunk', () => {
    const chunks = layout(0, 'abc', 'def');
    assert.deepEqual(planTrim(chunks, 0, 3), { start: 3, dropBefore: 3, charsDropped: 3, done: true });
  });

  test('a cut across several chunks deletes the ones wholly before it', () => {
    const chunks = layout(100, 'ab', 'cd', 'ef', 'ghij');
    assert.deepEqual(planTrim(chunks, 100, 7), { start: 107, dropBefore: 106, charsDropped: 7, done: true });
  });

  test('starting inside a chunk that begins before the window never deletes that chunk', () => {
    // An earlier cut left the window starting at 3 inside the chunk at 0.
    const chunks = layout(0, '0123456789', 'abc');
    const plan = planTrim(chunks, 3, 2);
    assert.deepEqual(plan, { start: 5, dropBefore: 0, charsDropped: 2, done: true });
    // And when the cut leaves that chunk, it is deleted.
    assert.deepEqual(planTrim(chunks, 3, 8), { start: 11, dropBefore: 10, charsDropped: 8, done: true });
  });

  test('zero excess when the window starts inside a chunk deletes nothing', () => {
    const chunks = layout(50, 'xxxxxyyyyy');
    assert.deepEqual(planTrim(chunks, 55, 0), { start: 55, dropBefore: 50, charsDropped: 0, done: true });
  });

  test('chunks wholly before `start` (extra ones passed by the caller) are marked for deletion', () => {
    const chunks = layout(0, 'abc', 'def', 'ghi');
    assert.deepEqual(planTrim(chunks, 6, 1), { start: 7, dropBefore: 6, charsDropped: 1, done: true });
  });

  test('multi-byte characters: the cut lands on a sequence start and counts characters, not bytes', () => {
    const chunks = layout(0, 'é🚀漢a');
    // Bytes: é 0-1, 🚀 2-5, 漢 6-8, a 9.
    assert.deepEqual(planTrim(chunks, 0, 1), { start: 2, dropBefore: 0, charsDropped: 1, done: true });
    assert.deepEqual(planTrim(chunks, 0, 2), { start: 6, dropBefore: 0, charsDropped: 2, done: true });
    assert.deepEqual(planTrim(chunks, 0, 3), { start: 9, dropBefore: 0, charsDropped: 3, done: true });
  });

  test('a character split across two chunks is dropped whole, deleting the first chunk', () => {
    const rocket = b('🚀');
    const chunks = layout(0, Buffer.concat([b('a'), rocket.subarray(0, 2)]), Buffer.concat([rocket.subarray(2), b('bc')]));
    // Drop 'a' and '🚀': the two continuation bytes at the start of chunk 2 go with it.
    assert.deepEqual(planTrim(chunks, 0, 2), { start: 5, dropBefore: 3, charsDropped: 2, done: true });
    // Drop only 'a': the window starts at the 🚀's lead byte in chunk 1.
    assert.deepEqual(planTrim(chunks, 0, 1), { start: 1, dropBefore: 0, charsDropped: 1, done: true });
  });

  test('continuation bytes at the start of the next chunk are consumed even when the excess is met', () => {
    const e = b('é');
    const chunks = layout(10, Buffer.concat([b('x'), e.subarray(0, 1)]), Buffer.concat([e.subarray(1), b('y')]));
    assert.deepEqual(planTrim(chunks, 10, 2), { start: 13, dropBefore: 12, charsDropped: 2, done: true });
  });

  test('chunks that run out before the excess is met: not done, resume from the returned start', () => {
    const first = layout(0, 'abc', 'de');
    const plan = planTrim(first, 0, 7);
    assert.deepEqual(plan, { start: 5, dropBefore: 5, charsDropped: 5, done: false });
    // The caller continues with the following chunks and the remaining excess.
    const next = layout(5, 'fghij');
    assert.deepEqual(planTrim(next, plan.start, 7 - plan.charsDropped), { start: 7, dropBefore: 5, charsDropped: 2, done: true });
  });

  test('running out exactly at the end of the chunks with the excess met: not done (the next chunk may hold continuation bytes)', () => {
    const rocket = b('🚀');
    const page1 = layout(0, Buffer.concat([b('ab'), rocket.subarray(0, 1)]));
    const plan = planTrim(page1, 0, 3);
    assert.deepEqual(plan, { start: 3, dropBefore: 3, charsDropped: 3, done: false });
    const page2 = layout(3, Buffer.concat([rocket.subarray(1), b('z')]));
    assert.deepEqual(planTrim(page2, plan.start, 0), { start: 6, dropBefore: 3, charsDropped: 0, done: true });
  });

  test('no chunks: nothing dropped, not done', () => {
    assert.deepEqual(planTrim([], 42, 5), { start: 42, dropBefore: 42, charsDropped: 0, done: false });
  });

  test('more excess than the log holds drops everything', () => {
    const chunks = layout(0, 'ab', 'é');
    assert.deepEqual(planTrim(chunks, 0, 100), { start: 4, dropBefore: 4, charsDropped: 3, done: false });
  });

  test('a trim then a second trim on the same stored chunks keep the window consistent', () => {
    // Simulates a store: one merged chunk holding the whole log, trimmed twice.
    const log = b('0123456789abcdefghij');
    const chunks = layout(0, log);
    const p1 = planTrim(chunks, 0, 5);
    assert.deepEqual(p1, { start: 5, dropBefore: 0, charsDropped: 5, done: true });
    const p2 = planTrim(chunks, p1.start, 5);
    assert.deepEqual(p2, { start: 10, dropBefore: 0, charsDropped: 5, done: true });
    // The chunk still holds the retained bytes: nothing wholly before the window is deleted.
    const kept = chunks.filter((c) => c.offset >= p2.dropBefore);
    assert.equal(Buffer.from(kept[0]!.data).subarray(p2.start - kept[0]!.offset).toString(), 'abcdefghij');
  });

  test('agrees with a brute-force tail on random UTF-8 split at random points', () => {
    const alphabet = ['a', 'é', '漢', '🚀', '\n'];
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const text = Array.from({ length: 1 + rnd(40) }, () => alphabet[rnd(alphabet.length)]).join('');
      const bytes = b(text);
      const cuts = [...new Set(Array.from({ length: rnd(6) }, () => 1 + rnd(Math.max(1, bytes.length - 1))))].sort((x, y) => x - y);
      const parts: Buffer[] = [];
      let prev = 0;
      for (const c of [...cuts, bytes.length]) {
        if (c > prev) parts.push(bytes.subarray(prev, c));
        prev = c;
      }
      const chunks = layout(1000, ...parts);
      const total = Array.from(text).length;
      const excess = rnd(total + 1);
      const plan = planTrim(chunks, 1000, excess);
      const expectedStart = 1000 + b(Array.from(text).slice(0, excess).join('')).length;
      assert.equal(plan.charsDropped, excess, `round ${round}`);
      if (excess < total) {
        assert.equal(plan.start, expectedStart, `round ${round}`);
        assert.equal(plan.done, true);
      } else {
        assert.equal(plan.start, 1000 + bytes.length);
      }
      // dropBefore never removes a chunk holding retained bytes and removes every chunk wholly before the cut.
      for (const c of chunks) {
        const end = c.offset + c.data.length;
        if (end <= plan.start) assert.ok(c.offset < plan.dropBefore, `round ${round}: chunk at ${c.offset} kept`);
        if (end > plan.start) assert.ok(c.offset >= plan.dropBefore, `round ${round}: chunk at ${c.offset} deleted`);
      }
    }
  });
});

// The window as the server keeps and serves it.

/** A GET/HEAD on a fresh connection. */
const raw = (server: { url: string }, method: string, path: string, headers: Record<string, string> = {}): Promise<RawResponse> =>
  rawRequest(server, method, path, { headers, agent: false });
const text = (b: Buffer) => b.toString('utf8');

describe('retention window', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer(); // the default: the trailing 5,000,000 characters
  });
  after(async () => {
    await server.stop();
  });

  test('6,000,000 characters keep the trailing 5,000,000, at absolute offsets', async () => {
    assert.equal(server.app.initialConfig.bodyLimit, 8 * 1024 * 1024);
    // 500,000 lines of 12 characters: "L0000000012\n" names the line, so every slice is recognisable.
    const full = Array.from({ length: 500_000 }, (_, i) => `L${String(i).padStart(10, '0')}\n`).join('');
    assert.equal(full.length, 6_000_000);
    const id = await createJob(server);
    const CHUNK = 750_000;
    for (let at = 0; at < full.length; at += CHUNK) {
      const res = await append(server, id, full.slice(at, at + CHUNK), at);
      assert.equal(res.status, 200);
    }
    const plain = await raw(server, 'GET', `/v2/logs/${id}`);
    assert.equal(plain.status, 200);
    assert.equal(plain.headers['x-log-offset'], '1000000');
    // The stripped view says what was dropped, in one line before the trailing 5,000,000 characters.
    const notice = '[buildlog] 1000000 bytes at the start of this log were dropped: it keeps the last 5000000 characters.\n';
    assert.ok(text(plain.body) === notice + full.slice(1_000_000), 'the body is the notice, then the trailing 5,000,000 characters');
    const plainRaw = await raw(server, 'GET', `/v2/logs/${id}?raw=1`);
    assert.equal(plainRaw.body.length, 5_000_000, 'raw=1: the trailing 5,000,000 characters alone');

    const resumed = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=4200000-' });
    assert.equal(resumed.status, 206);
    assert.equal(resumed.headers['content-range'], 'bytes 4200000-5999999/6000000');
    assert.equal(resumed.headers['x-log-offset'], '4200000');
    assert.ok(text(resumed.body) === full.slice(4_200_000), 'resumed at the absolute offset');

    // A range that starts before the window starts at the window.
    const early = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=10-' });
    assert.equal(early.status, 206);
    assert.equal(early.headers['content-range'], 'bytes 1000000-5999999/6000000');
    assert.equal(early.body.length, 5_000_000);

    // The log keeps growing at its absolute length.
    assert.equal((await append(server, id, 'tail\n', 6_000_000)).status, 200);
    const tail = await raw(server, 'GET', `/v2/logs/${id}?raw=1`, { range: 'bytes=-17' });
    assert.equal(text(tail.body), 'L0000499999\ntail\n');
    assert.equal(tail.headers['content-range'], 'bytes 5999988-6000004/6000005');
  });

  test('the window counts characters, not bytes', async () => {
    const small = await startTestServer({ retentionChars: 5 });
    try {
      const id = await createJob(small);
      await append(small, id, '€€€'); // 3 characters, 9 bytes
      await append(small, id, 'abcd'); // 7 characters: the first 2 (6 bytes) fall out
      const res = await raw(small, 'GET', `/v2/logs/${id}?raw=1`);
      assert.equal(text(res.body), '€abcd');
      assert.equal(res.headers['x-log-offset'], '6');
    } finally {
      await small.stop();
    }
  });
});
