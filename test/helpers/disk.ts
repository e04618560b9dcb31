import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';

/** Writes `file` until its filesystem is full (a small tmpfs in the tests); the file is left for the caller to remove. */
export function fillDisk(file: string): void {
  const fd = openSync(file, 'w');
  try {
    for (;;) writeSync(fd, Buffer.alloc(64 * 1024, 1));
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    closeSync(fd);
  }
}
