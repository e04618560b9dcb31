// WalSync: the group fsync of the SQLite WAL off the event loop. What it promises: a flush resolves only
// after a data sync that began after the flush was asked for (so it covers every commit made before),
// flushes asked while one runs share the next, a failed sync rejects exactly its flushes.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { WalSync } from '../src/store/sqlite-wal-sync.js';
import { tempDir, waitFor } from './helpers/server.js';

/** A data sync that completes when the test says so, recording when each began. */
function heldSync() {
  const started: { release: (err?: Error) => void }[] = [];
  const sync = (file: FileHandle) =>
    new Promise<void>((resolve, reject) => {
      assert.ok(file.fd > 0, 'the WAL is open');
      started.push({ release: (err) => (err ? reject(err) : resolve()) });
    });
  /** Resolves once `n` syncs have begun (the first one opens the file first, which is I/O). */
  const begun = (n: number) => waitFor(() => started.length >= n, 5000, `sync ${n} to begin`);
  return { started, sync, begun };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('WalSync', () => {
  const dir = tempDir();
  const wal = join(dir, 'buildlog.db-wal');
  writeFileSync(wal, 'frames');
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a flush waits for a sync that began after it; flushes during a sync share the next one', async () => {
    const held = heldSync();
    const walSync = new WalSync(wal, held.sync);
    const done: string[] = [];
    const first = walSync.flush().then(() => done.push('first'));
    await held.begun(1);
    const second = walSync.flush().then(() => done.push('second'));
    const third = walSync.flush().then(() => done.push('third'));
    await settled();
    assert.equal(held.started.length, 1, 'no second sync while one runs');
    held.started[0]!.release();
    await first;
    await held.begun(2);
    assert.deepEqual(done, ['first'], 'the later flushes wait: the sync under way may have begun before their commits');
    await settled();
    assert.equal(held.started.length, 2, 'one sync for both');
    held.started[1]!.release();
    await Promise.all([second, third]);
    assert.deepEqual(done, ['first', 'second', 'third']);
    await walSync.close();
  });

  test('a failed sync rejects its flushes only; the next flush syncs again', async () => {
    const held = heldSync();
    const walSync = new WalSync(wal, held.sync);
    const failing = walSync.flush();
    await held.begun(1);
    const later = walSync.flush();
    held.started[0]!.release(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await assert.rejects(failing, /EIO/);
    await held.begun(2);
    held.started[1]!.release();
    await later;
    await walSync.close();
  });

  test('close waits for the syncs under way and queued; a flush after close is refused', async () => {
    const held = heldSync();
    const walSync = new WalSync(wal, held.sync);
    const flushed = walSync.flush();
    await held.begun(1);
    const queued = walSync.flush();
    let closed = false;
    const closing = walSync.close().then(() => (closed = true));
    held.started[0]!.release();
    await flushed;
    await held.begun(2);
    assert.equal(closed, false, 'the queued flush still runs');
    held.started[1]!.release();
    await queued;
    await closing;
    await assert.rejects(walSync.flush(), /closed/);
  });

  test('the real fdatasync of an existing file; a missing WAL is an error, not a hang', async () => {
    const real = new WalSync(wal);
    await real.flush();
    await real.close();
    const missing = new WalSync(join(dir, 'none-wal'));
    await assert.rejects(missing.flush(), /ENOENT/);
    await missing.close();
  });
});
