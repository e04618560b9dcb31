/**
 * Store contract, part: the retention window (characters, not bytes, at absolute offsets) and the
 * checksum of every byte appended. Called from storeContract, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { b, isContinuation, mustAppend, readAll, tailStart, type WithJob } from './store-harness.js';

export function storeRetentionContract(withJob: WithJob): void {
  describe('retention', () => {
    test('a log keeps exactly its trailing N characters; offsets stay absolute', async () => {
      const N = 10;
      await withJob({ retentionChars: N }, async (store, job) => {
        let all = '';
        const pieces = ['abc', 'defgh', 'ij', 'k', 'lmnopqrstuvwxyz', '0', '1', '23456789', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'x'];
        for (const p of pieces) {
          await mustAppend(store, job.id, p, all.length);
          all += p;
          const start = Math.max(0, all.length - N);
          assert.deepEqual(await store.logInfo(job.id), { start, length: all.length }, `after ${JSON.stringify(p)}`);
          assert.deepEqual(await store.readLog(job.id, start, 1000), { start, end: all.length, data: b(all.slice(start)) });
        }
        const info = (await store.logInfo(job.id))!;
        // Reading from before the window starts at the window.
        assert.deepEqual(await store.readLog(job.id, 0, 1000), { start: info.start, end: info.length, data: b(all.slice(-N)) });
        assert.deepEqual(await store.readLog(job.id, info.start - 1, 3), {
          start: info.start,
          end: info.start + 3,
          data: b(all.slice(info.start, info.start + 3)),
        });
        // Inside the window, absolute offsets.
        assert.deepEqual(await store.readLog(job.id, info.length - 4, 2), {
          start: info.length - 4,
          end: info.length - 2,
          data: b(all.slice(-4, -2)),
        });
      });
    });

    test('a single append larger than the window keeps only its tail', async () => {
      const N = 100;
      await withJob({ retentionChars: N }, async (store, job) => {
        await mustAppend(store, job.id, 'head ');
        const big = Array.from({ length: 1000 }, (_, i) => String.fromCharCode(65 + (i % 26))).join('');
        await mustAppend(store, job.id, big);
        const all = 'head ' + big;
        assert.deepEqual(await store.logInfo(job.id), { start: all.length - N, length: all.length });
        assert.equal((await readAll(store, job.id)).data.toString(), all.slice(-N));
      });
    });

    test('a log of exactly N characters is not trimmed; one more character trims one', async () => {
      const N = 20;
      await withJob({ retentionChars: N }, async (store, job) => {
        await mustAppend(store, job.id, 'é'.repeat(N)); // N characters, 2N bytes
        assert.deepEqual(await store.logInfo(job.id), { start: 0, length: 2 * N });
        await mustAppend(store, job.id, 'x');
        assert.deepEqual(await store.logInfo(job.id), { start: 2, length: 2 * N + 1 });
        assert.equal((await readAll(store, job.id)).data.toString(), 'é'.repeat(N - 1) + 'x');
      });
    });

    test('multi-byte UTF-8: the cut never splits a sequence, also when one is split across appends', async () => {
      const N = 7;
      await withJob({ retentionChars: N }, async (store, job) => {
        const rocket = b('🚀'); // 4 bytes
        const e = b('é'); // 2 bytes
        const han = b('漢'); // 3 bytes
        const appends: Buffer[] = [
          b('ab'),
          e,
          rocket.subarray(0, 2),
          rocket.subarray(2), // 🚀 split 2+2
          b('c'),
          han.subarray(0, 1),
          han.subarray(1), // 漢 split 1+2
          e.subarray(0, 1),
          e.subarray(1), // é split 1+1
          Buffer.concat([rocket, rocket, rocket]),
          rocket.subarray(0, 3),
          rocket.subarray(3), // 🚀 split 3+1
          b('z'),
          Buffer.concat([han, e, b('q'), rocket.subarray(0, 1)]),
          rocket.subarray(1), // 🚀 split 1+3
          Buffer.concat([e, e, e, e, e, e, e, e, e]), // the window is all é
          b('🚀漢é!'),
        ];
        let all = Buffer.alloc(0);
        for (const [i, chunk] of appends.entries()) {
          await mustAppend(store, job.id, chunk, all.length);
          all = Buffer.concat([all, chunk]);
          const start = tailStart(all, N);
          assert.deepEqual(await store.logInfo(job.id), { start, length: all.length }, `after append ${i}`);
          const kept = await readAll(store, job.id);
          assert.equal(kept.start, start);
          assert.ok(kept.data.equals(all.subarray(start)), `retained bytes after append ${i}`);
          assert.ok(kept.data.length === 0 || !isContinuation(kept.data[0]!), 'starts on a sequence start');
          // When the log ends on a whole character, the retained text is exactly the last N characters.
          const text = all.toString('utf8');
          if (Buffer.from(text, 'utf8').equals(all)) {
            const chars = Array.from(text);
            assert.equal(kept.data.toString('utf8'), chars.slice(-N).join(''), `text after append ${i}`);
          }
        }
        const final = Array.from(all.toString('utf8'));
        assert.equal((await readAll(store, job.id)).data.toString('utf8'), final.slice(-N).join(''));
        assert.equal((await readAll(store, job.id)).data.toString('utf8'), 'ééé🚀漢é!');
      });
    });

    test('many small appends under a small window: every read is the exact tail', async () => {
      const N = 1000;
      await withJob({ retentionChars: N }, async (store, job) => {
        const alphabet = ['a', 'é', '漢', '🚀', '\n', 'Z'];
        let all = Buffer.alloc(0);
        for (let i = 0; i < 400; i++) {
          const s = Array.from({ length: 1 + (i % 17) }, (_, k) => alphabet[(i + k) % alphabet.length]).join('');
          const chunk = b(s);
          await mustAppend(store, job.id, chunk);
          all = Buffer.concat([all, chunk]);
          if (i % 50 === 49) {
            const start = tailStart(all, N);
            assert.deepEqual(await store.logInfo(job.id), { start, length: all.length });
            assert.ok((await readAll(store, job.id, 0, 333)).data.equals(all.subarray(start)));
          }
        }
        const text = Array.from(all.toString('utf8'));
        assert.equal((await readAll(store, job.id)).data.toString('utf8'), text.slice(-N).join(''));
      });
    });

    test('one append that pushes a long history of chunks out of the window at once', async () => {
      const N = 2_500_000;
      await withJob({ retentionChars: N }, async (store, job) => {
        const parts: Buffer[] = [];
        for (let i = 0; i < 75; i++) {
          const p = Buffer.alloc(33_000, 97 + (i % 26));
          parts.push(p);
          await mustAppend(store, job.id, p);
        }
        // 2.3M characters: the cut lands inside the 69th of the 75 earlier chunks.
        const big = Buffer.concat([Buffer.alloc(2_000_000, '.'), Buffer.alloc(600_000, 'é')]);
        parts.push(big);
        await mustAppend(store, job.id, big);
        const all = Buffer.concat(parts);
        const start = tailStart(all, N);
        assert.deepEqual(await store.logInfo(job.id), { start, length: all.length });
        const kept = await readAll(store, job.id, 0, 1_000_000);
        assert.equal(kept.start, start);
        assert.ok(kept.data.equals(all.subarray(start)));
        assert.equal(Array.from(kept.data.toString('utf8')).length, N);
      });
    });

    test('a retry of a chunk that (partly) fell out of the window is still `duplicate`', async () => {
      const N = 10;
      await withJob({ retentionChars: N }, async (store, job) => {
        await mustAppend(store, job.id, 'abcdefgh', 0);
        await mustAppend(store, job.id, 'ijklmnop', 8);
        assert.deepEqual(await store.logInfo(job.id), { start: 6, length: 16 });
        // Partly trimmed: the retained part matches.
        assert.deepEqual(await store.append(job.id, b('abcdefgh'), 0), { kind: 'duplicate', length: 16 });
        // Partly trimmed, the retained part differs.
        assert.deepEqual(await store.append(job.id, b('abcdefXX'), 0), { kind: 'offset-mismatch', length: 16 });
        await mustAppend(store, job.id, 'qrstuvwxyz', 16);
        // Wholly trimmed: cannot be compared, answered as a retry.
        assert.deepEqual(await store.append(job.id, b('ijklmnop'), 8), { kind: 'duplicate', length: 26 });
        assert.deepEqual(await store.logInfo(job.id), { start: 16, length: 26 });
        assert.equal((await readAll(store, job.id)).data.toString(), 'qrstuvwxyz');
      });
    });
  });

  describe('checksum', () => {
    test('length and CRC-32 of every byte ever appended: retries, heartbeats and retention change nothing, reopen keeps it', async () => {
      await withJob({ retentionChars: 20 }, async (store, job, sut) => {
        assert.deepEqual(await store.logChecksum(job.id), { length: 0, crc32: 0 });
        assert.equal(await store.logChecksum('doesNotExist00000'), null);
        const parts = [b('first line\n'), randomBytes(100), b('ünïcödé\n'), Buffer.alloc(0), b('x'.repeat(70))];
        let all = Buffer.alloc(0);
        for (const p of parts) {
          await store.append(job.id, p, all.length);
          all = Buffer.concat([all, p]);
          assert.deepEqual(await store.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
        }
        // A retry of bytes already stored is not counted twice.
        assert.equal((await store.append(job.id, parts[4]!, all.length - parts[4]!.length)).kind, 'duplicate');
        assert.ok((await store.logInfo(job.id))!.start > 0, 'retention dropped the head');
        const reopened = await sut.reopen();
        assert.deepEqual(await reopened.logChecksum(job.id), { length: all.length, crc32: crc32(all) });
      });
    });
  });
}
