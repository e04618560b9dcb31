import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AppendEvent, LiveEvent } from '../src/live/bus.js';
import { MemoryBus } from '../src/live/memory.js';
import { liveBusContract } from './contracts/live.contract.js';

liveBusContract('MemoryBus', async () => {
  const bus = new MemoryBus();
  return { bus, cleanup: () => bus.close() };
});

describe('MemoryBus specifics', () => {
  test('every subscriber gets the very same event object and Buffer (one buffer per append)', () => {
    const bus = new MemoryBus();
    const got: LiveEvent[][] = [[], [], []];
    for (const list of got) bus.subscribe('job1', (e) => void list.push(e));
    const data = Buffer.from('shared bytes');
    const event: AppendEvent = { type: 'append', jobId: 'job1', start: 0, end: data.length, data };
    bus.publish(event);
    // Synchronous delivery: already there.
    for (const list of got) {
      assert.equal(list.length, 1);
      assert.equal(list[0], event);
      assert.equal((list[0] as AppendEvent).data, data);
    }
    const second = Buffer.from('next');
    bus.publish({ type: 'append', jobId: 'job1', start: data.length, end: data.length + 4, data: second });
    const buffers = got.map((l) => (l[1] as AppendEvent).data);
    assert.ok(buffers.every((d) => d === second));
    assert.notEqual(buffers[0], data);
  });

  test('subscribedJobs counts jobs with followers and drops to 0 after all unsubscribe', () => {
    const bus = new MemoryBus();
    assert.equal(bus.subscribedJobs, 0);
    const a1 = bus.subscribe('a', () => undefined);
    const a2 = bus.subscribe('a', () => undefined);
    const b1 = bus.subscribe('b', () => undefined);
    assert.equal(bus.subscribedJobs, 2);
    a1();
    assert.equal(bus.subscribedJobs, 2);
    a2();
    assert.equal(bus.subscribedJobs, 1);
    a2();
    a1();
    assert.equal(bus.subscribedJobs, 1);
    b1();
    assert.equal(bus.subscribedJobs, 0);
    // A stale unsubscribe after the job was followed again keeps the new follower.
    const c1 = bus.subscribe('c', () => undefined);
    c1();
    const c2 = bus.subscribe('c', () => undefined);
    c1();
    assert.equal(bus.subscribedJobs, 1);
    c2();
    assert.equal(bus.subscribedJobs, 0);
  });

  test('unsubscribing during dispatch frees the job too', () => {
    const bus = new MemoryBus();
    let calls = 0;
    const unsubscribe: () => void = bus.subscribe('j', () => {
      calls++;
      unsubscribe();
    });
    bus.publish({ type: 'status', jobId: 'j', status: 'SUCCEEDED' });
    bus.publish({ type: 'status', jobId: 'j', status: 'SUCCEEDED' });
    assert.equal(calls, 1);
    assert.equal(bus.subscribedJobs, 0);
  });

  test('close drops every subscription', async () => {
    const bus = new MemoryBus();
    let calls = 0;
    bus.subscribe('x', () => void calls++);
    bus.subscribe('y', () => void calls++);
    await bus.close();
    assert.equal(bus.subscribedJobs, 0);
    bus.publish({ type: 'status', jobId: 'x', status: 'FAILED' });
    assert.equal(calls, 0);
  });
});
