/**
 * The LiveBus contract: what src/live/bus.ts promises, runnable unchanged against every implementation
 * (in-process MemoryBus now, Redis later). A runner calls `liveBusContract(name, open)` from a
 * `*.test.ts` file.
 *
 * Delivery may be asynchronous (a networked bus), so every positive assertion waits, bounded, for the
 * events to arrive; never a sleep. To prove that something was NOT delivered, the tests publish a
 * sentinel event on the same job afterwards and wait until a listener still subscribed has it: events of
 * one job are delivered in publish order, so anything published before the sentinel has been dispatched
 * by then.
 *
 * Assumptions an implementation must meet (the LogFollower relies on them too):
 * - a subscription is effective when `subscribe()` returns: events published after that on this node are
 *   delivered (a networked bus sets up its channel when it is opened, before `open` resolves);
 * - an `append` event with small `data` (here under 1 KiB) is delivered with its `data`.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '../../src/core/ids.js';
import type { AppendEvent, LiveBus, LiveEvent, LiveListener } from '../../src/live/bus.js';
import { waitFor } from '../helpers/server.js';

export interface LiveBusUnderTest {
  bus: LiveBus;
  /**
   * Optional: another node's bus on the same channel (e.g. a second Redis connection). When given, the
   * cross-node tests run; an in-process bus has no peer.
   */
  peer?: LiveBus;
  /** Closes the bus (and peer) and frees what `open` created; a test may have closed the bus already. */
  cleanup(): Promise<void>;
}

export type OpenLiveBus = () => Promise<LiveBusUnderTest>;

const WAIT_MS = 5000;

/** A listener that records what it receives. */
function recorder(): { events: LiveEvent[]; listener: LiveListener } {
  const events: LiveEvent[] = [];
  return { events, listener: (e) => void events.push(e) };
}

const append = (jobId: string, start: number, text: string): AppendEvent => {
  const data = Buffer.from(text, 'utf8');
  return { type: 'append', jobId, start, end: start + data.length, data };
};

/** What a listener saw, without object identity, for comparisons (data as text). */
function plain(e: LiveEvent): unknown {
  if (e.type === 'status') return { type: e.type, jobId: e.jobId, status: e.status };
  if (e.type === 'deleted' || e.type === 'resync') return { type: e.type, jobId: e.jobId };
  return { type: e.type, jobId: e.jobId, start: e.start, end: e.end, data: e.data?.toString('utf8') };
}

const SENTINEL = 'ABORTED' as const;
const isSentinel = (e: LiveEvent): boolean => e.type === 'status' && e.status === SENTINEL;

export function liveBusContract(name: string, open: OpenLiveBus): void {
  async function withBus(fn: (sut: LiveBusUnderTest) => Promise<void>): Promise<void> {
    const sut = await open();
    try {
      await fn(sut);
    } finally {
      await sut.cleanup();
    }
  }

  /** Publishes the sentinel on `jobId` and waits until `witness` (still subscribed) has it. */
  async function barrier(bus: LiveBus, jobId: string, witness: LiveEvent[]): Promise<void> {
    const seen = witness.filter(isSentinel).length;
    bus.publish({ type: 'status', jobId, status: SENTINEL });
    await waitFor(() => witness.filter(isSentinel).length > seen, WAIT_MS, 'the sentinel');
  }

  describe(name, () => {
    test('a subscriber gets the events of its job, in publish order, with their fields and bytes', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const r = recorder();
        const unsubscribe = bus.subscribe(job, r.listener);
        const published: LiveEvent[] = [
          append(job, 0, 'hello '),
          append(job, 6, 'wörld 🚀\n'),
          { type: 'status', jobId: job, status: 'RUNNING' },
          append(job, 19, 'x'),
          { type: 'append', jobId: job, start: 20, end: 25 }, // without data: a hint only
          { type: 'status', jobId: job, status: 'SUCCEEDED' },
          { type: 'deleted', jobId: job },
        ];
        for (const e of published) bus.publish(e);
        await waitFor(() => r.events.length >= published.length, WAIT_MS, 'all events');
        assert.deepEqual(r.events.map(plain), published.map(plain));
        // Bytes exactly (also non-UTF-8 ones).
        const bin = Buffer.from([0, 0xff, 0x80, 0x1b, 0x0a]);
        bus.publish({ type: 'append', jobId: job, start: 25, end: 30, data: bin });
        await waitFor(() => r.events.length === published.length + 1, WAIT_MS, 'the binary event');
        const last = r.events.at(-1) as AppendEvent;
        assert.ok(last.data && Buffer.compare(last.data, bin) === 0);
        unsubscribe();
      });
    });

    test('many events are delivered in publish order', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const r = recorder();
        bus.subscribe(job, r.listener);
        let offset = 0;
        const expected: unknown[] = [];
        for (let i = 0; i < 500; i++) {
          const e = append(job, offset, `line ${i}\n`);
          offset = e.end;
          expected.push(plain(e));
          bus.publish(e);
        }
        await waitFor(() => r.events.length >= 500, WAIT_MS, '500 events');
        assert.deepEqual(r.events.map(plain), expected);
      });
    });

    test('subscribers get the events of their own job only', async () => {
      await withBus(async ({ bus }) => {
        const jobA = newId();
        const jobB = newId();
        const a = recorder();
        const b = recorder();
        bus.subscribe(jobA, a.listener);
        bus.subscribe(jobB, b.listener);
        // A job nobody follows: publishing is harmless.
        bus.publish(append(newId(), 0, 'nobody listens'));
        bus.publish(append(jobA, 0, 'for A 1'));
        bus.publish(append(jobB, 0, 'for B 1'));
        bus.publish(append(jobA, 7, 'for A 2'));
        bus.publish({ type: 'status', jobId: jobB, status: 'FAILED' });
        await barrier(bus, jobA, a.events);
        await barrier(bus, jobB, b.events);
        assert.deepEqual(a.events.filter((e) => !isSentinel(e)).map(plain), [plain(append(jobA, 0, 'for A 1')), plain(append(jobA, 7, 'for A 2'))]);
        assert.deepEqual(b.events.filter((e) => !isSentinel(e)).map(plain), [
          plain(append(jobB, 0, 'for B 1')),
          { type: 'status', jobId: jobB, status: 'FAILED' },
        ]);
        for (const e of a.events) assert.equal(e.jobId, jobA);
        for (const e of b.events) assert.equal(e.jobId, jobB);
      });
    });

    test('several subscribers of one job each get every event with equal data bytes', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const subs = Array.from({ length: 5 }, () => recorder());
        for (const s of subs) bus.subscribe(job, s.listener);
        const events = [append(job, 0, 'shared bytes é🚀'), append(job, 20, 'more'), append(job, 24, '\u0000\n')];
        for (const e of events) bus.publish(e);
        await waitFor(() => subs.every((s) => s.events.length >= events.length), WAIT_MS, 'every subscriber');
        for (const s of subs) {
          assert.equal(s.events.length, events.length);
          s.events.forEach((got, i) => {
            const want = events[i]!;
            assert.equal(got.type, 'append');
            const g = got as AppendEvent;
            assert.equal(g.jobId, job);
            assert.equal(g.start, want.start);
            assert.equal(g.end, want.end);
            assert.ok(g.data, 'small appends carry their data');
            assert.ok(g.data.equals(want.data!), `event ${i} data`);
          });
        }
      });
    });

    test('unsubscribe stops delivery to that listener only, and is idempotent', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const stays = recorder();
        const leaves = recorder();
        bus.subscribe(job, stays.listener);
        const unsubscribe = bus.subscribe(job, leaves.listener);
        bus.publish(append(job, 0, 'one'));
        await waitFor(() => leaves.events.length === 1 && stays.events.length === 1, WAIT_MS, 'first event');
        unsubscribe();
        unsubscribe(); // idempotent: no throw, no effect on others
        bus.publish(append(job, 3, 'two'));
        await barrier(bus, job, stays.events);
        assert.deepEqual(leaves.events.map(plain), [plain(append(job, 0, 'one'))]);
        assert.deepEqual(stays.events.filter((e) => !isSentinel(e)).map(plain), [plain(append(job, 0, 'one')), plain(append(job, 3, 'two'))]);
        unsubscribe();
      });
    });

    test('a stale unsubscribe does not remove a later subscriber of the same job', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const first = recorder();
        const unsubscribeFirst = bus.subscribe(job, first.listener);
        unsubscribeFirst(); // the job now has no subscribers
        const second = recorder();
        const unsubscribeSecond = bus.subscribe(job, second.listener);
        unsubscribeFirst(); // again, after someone else subscribed
        bus.publish(append(job, 0, 'for second'));
        await waitFor(() => second.events.length === 1, WAIT_MS, 'delivery to the later subscriber');
        await barrier(bus, job, second.events);
        assert.equal(first.events.length, 0);
        unsubscribeSecond();
      });
    });

    test('the same job can be followed again after everyone unsubscribed', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const a = recorder();
        const unsubscribeA = bus.subscribe(job, a.listener);
        bus.publish(append(job, 0, 'a'));
        await waitFor(() => a.events.length === 1, WAIT_MS, 'a');
        unsubscribeA();
        const b = recorder();
        bus.subscribe(job, b.listener);
        bus.publish(append(job, 1, 'b'));
        await waitFor(() => b.events.length === 1, WAIT_MS, 'b');
        await barrier(bus, job, b.events);
        assert.deepEqual(a.events.map(plain), [plain(append(job, 0, 'a'))]);
        assert.deepEqual(b.events.filter((e) => !isSentinel(e)).map(plain), [plain(append(job, 1, 'b'))]);
      });
    });

    test('a listener may unsubscribe itself during dispatch; the others still get the event', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const before = recorder();
        const after = recorder();
        const selfEvents: LiveEvent[] = [];
        bus.subscribe(job, before.listener);
        const unsubscribeSelf: () => void = bus.subscribe(job, (e) => {
          selfEvents.push(e);
          unsubscribeSelf();
        });
        bus.subscribe(job, after.listener);
        bus.publish(append(job, 0, 'first'));
        bus.publish(append(job, 5, 'second'));
        await waitFor(() => before.events.length >= 2 && after.events.length >= 2, WAIT_MS, 'both events');
        await barrier(bus, job, after.events);
        assert.deepEqual(selfEvents.map(plain), [plain(append(job, 0, 'first'))]);
        for (const r of [before, after]) {
          assert.deepEqual(r.events.filter((e) => !isSentinel(e)).map(plain), [plain(append(job, 0, 'first')), plain(append(job, 5, 'second'))]);
        }
      });
    });

    test('a listener may unsubscribe another one during dispatch; it gets nothing after', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const victim = recorder();
        let unsubscribeVictim = (): void => undefined;
        const killer = recorder();
        bus.subscribe(job, (e) => {
          killer.listener(e);
          unsubscribeVictim();
        });
        unsubscribeVictim = bus.subscribe(job, victim.listener);
        const witness = recorder();
        bus.subscribe(job, witness.listener);
        bus.publish(append(job, 0, 'first'));
        await waitFor(() => witness.events.length === 1, WAIT_MS, 'first');
        const victimAfterFirst = victim.events.length;
        // Whether the victim still sees the event being dispatched is up to the bus; never a later one.
        assert.ok(victimAfterFirst <= 1);
        bus.publish(append(job, 5, 'second'));
        await barrier(bus, job, witness.events);
        assert.equal(victim.events.length, victimAfterFirst);
        assert.equal(killer.events.filter((e) => !isSentinel(e)).length, 2);
      });
    });

    test('a listener may subscribe another one during dispatch', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const late = recorder();
        let added = false;
        const witness = recorder();
        bus.subscribe(job, () => {
          if (!added) {
            added = true;
            bus.subscribe(job, late.listener);
          }
        });
        bus.subscribe(job, witness.listener);
        bus.publish(append(job, 0, 'first'));
        await waitFor(() => witness.events.length === 1, WAIT_MS, 'first');
        bus.publish(append(job, 5, 'second'));
        await waitFor(() => late.events.some((e) => e.type === 'append' && e.start === 5), WAIT_MS, 'the late subscriber');
        assert.ok(late.events.length <= 2);
      });
    });

    test('a throwing listener does not stop the others, now or later', async () => {
      await withBus(async ({ bus }) => {
        const job = newId();
        const before = recorder();
        const after = recorder();
        let thrown = 0;
        bus.subscribe(job, before.listener);
        bus.subscribe(job, () => {
          thrown++;
          throw new Error('broken follower');
        });
        bus.subscribe(job, after.listener);
        for (let i = 0; i < 3; i++) bus.publish(append(job, i, String(i)));
        await waitFor(() => before.events.length >= 3 && after.events.length >= 3, WAIT_MS, 'events past the thrower');
        assert.deepEqual(after.events.map(plain), [0, 1, 2].map((i) => plain(append(job, i, String(i)))));
        assert.deepEqual(before.events.map(plain), after.events.map(plain));
        assert.ok(thrown >= 1);
      });
    });

    test('events published on another node reach this node\'s subscribers (when the bus has a peer)', async (t) => {
      const sut = await open();
      try {
        const { bus, peer } = sut;
        if (!peer) {
          t.skip('no peer node for this bus');
          return;
        }
        const job = newId();
        const here = recorder();
        const there = recorder();
        bus.subscribe(job, here.listener);
        peer.subscribe(job, there.listener);
        const events = [append(job, 0, 'from the peer '), append(job, 14, 'é🚀'), { type: 'status', jobId: job, status: 'SUCCEEDED' } as const];
        for (const e of events) peer.publish(e);
        await waitFor(() => here.events.length >= 3 && there.events.length >= 3, WAIT_MS, 'cross-node delivery');
        assert.deepEqual(here.events.map(plain), events.map(plain));
        assert.deepEqual(there.events.map(plain), events.map(plain));
        bus.publish(append(job, 20, 'back'));
        await waitFor(() => there.events.length >= 4, WAIT_MS, 'delivery back to the peer');
        assert.deepEqual(plain(there.events[3]!), plain(append(job, 20, 'back')));
      } finally {
        await sut.cleanup();
      }
    });

    test('close resolves, and a closed bus delivers nothing more', async () => {
      const sut = await open();
      try {
        const job = newId();
        const r = recorder();
        sut.bus.subscribe(job, r.listener);
        await sut.bus.close();
        sut.bus.publish({ type: 'status', jobId: job, status: 'SUCCEEDED' });
        assert.deepEqual(r.events, []);
      } finally {
        await sut.cleanup();
      }
    });
  });
}
