/**
 * Store contract, part five: the `committed` callback of append, which live fan-out hangs on. Called from
 * storeContract with its `withStore`, so it runs against every backend.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppendResult } from '../../src/store/store.js';
import { makeJob, type WithStore } from './store-harness.js';

export function storeCommittedContract(withStore: WithStore): void {
  describe('append: committed before acknowledged', () => {
    test('committed is called once per append, in order, with the result, before the promise resolves, with the bytes readable', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob();
        await store.createJob(job);
        const events: string[] = [];
        const reads: Promise<unknown>[] = [];
        const parts = ['one\n', 'two\n', 'three\n'];
        const appends = parts.map((p, i) =>
          store
            .append(job.id, Buffer.from(p), undefined, (r) => {
              events.push(`committed ${i} ${JSON.stringify(r)}`);
              // What a follower would read back at that moment (gap repair reads the store).
              reads.push(store.readLog(job.id, 0, 100).then((s) => s!.data.toString()));
            })
            .then((r) => events.push(`resolved ${i} ${JSON.stringify(r)}`)),
        );
        await Promise.all(appends);
        const results: AppendResult[] = [
          { kind: 'appended', start: 0, end: 4 },
          { kind: 'appended', start: 4, end: 8 },
          { kind: 'appended', start: 8, end: 14 },
        ];
        for (let i = 0; i < 3; i++) {
          const committed = events.indexOf(`committed ${i} ${JSON.stringify(results[i])}`);
          const resolved = events.indexOf(`resolved ${i} ${JSON.stringify(results[i])}`);
          assert.ok(committed >= 0 && resolved > committed, `append ${i}: ${events.join(' | ')}`);
          if (i > 0) assert.ok(committed > events.indexOf(`committed ${i - 1} ${JSON.stringify(results[i - 1])}`), 'in order');
        }
        assert.equal(events.length, 6, 'each once');
        const seen = (await Promise.all(reads)) as string[];
        seen.forEach((text, i) => assert.ok(text.startsWith(parts.slice(0, i + 1).join('')), `bytes of append ${i} readable when committed: ${JSON.stringify(text)}`));
      });
    });

    test('refusals are reported to committed too; a committed that throws rejects its append only, whose bytes stay', async () => {
      await withStore({}, async ({ store }) => {
        const job = makeJob();
        await store.createJob(job);
        const seen: AppendResult[] = [];
        await store.append(job.id, Buffer.from('abc'), 0, (r) => seen.push(r));
        assert.deepEqual(await store.append(job.id, Buffer.from('abc'), 0, (r) => seen.push(r)), { kind: 'duplicate', length: 3 });
        assert.deepEqual(await store.append(job.id, Buffer.from('x'), 1, (r) => seen.push(r)), { kind: 'offset-mismatch', length: 3 });
        assert.deepEqual(seen, [{ kind: 'appended', start: 0, end: 3 }, { kind: 'duplicate', length: 3 }, { kind: 'offset-mismatch', length: 3 }]);

        const boom = new Error('listener failed');
        const failing = store.append(job.id, Buffer.from('def'), 3, () => {
          throw boom;
        });
        const other = store.append(job.id, Buffer.from('ghi'), undefined, () => undefined);
        await assert.rejects(failing, boom);
        assert.deepEqual(await other, { kind: 'appended', start: 6, end: 9 }, 'the other appends of the commit are acknowledged');
        assert.equal((await store.readLog(job.id, 0, 100))!.data.toString(), 'abcdefghi');
      });
    });
  });
}
