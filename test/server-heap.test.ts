// The server's heap growth (src/server/heap.ts): set at start unless the operator's Node options chose one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { keepHeapNearLive } from '../src/server/heap.js';

test("an operator who set the heap growth on Node's command line or in NODE_OPTIONS keeps it", () => {
  assert.equal(keepHeapNearLive(['--inspect', '--heap-growing-percent=80']), false);
  assert.equal(keepHeapNearLive(['--heap_growing_percent=120']), false);
  assert.equal(keepHeapNearLive(['--max-old-space-size=512', '--heap-growing-percent', '30']), false);
});

test('otherwise the server sets its own, and other heap options do not stop it', () => {
  assert.equal(keepHeapNearLive([]), true);
  assert.equal(keepHeapNearLive(['--max-old-space-size=512', '--heap-growing-percentage-typo']), true);
});
