// The embedded store copies its write-ahead log into the database file from a worker thread (the server's
// store), not inside a commit on the event loop: with 8 MiB appended, below SQLite's automatic threshold
// (1,000 pages of 16 KiB), the database file has them while the store is still open.
import assert from 'node:assert/strict';
import { rmSync, statSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { newId } from '../src/core/ids.js';
import { databaseFile, SqliteStore } from '../src/store/sqlite.js';
import { makeJob } from './contracts/store-harness.js';
import { tempDir, waitFor } from './helpers/server.js';

describe('WAL checkpoints', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  async function fill(background: boolean) {
    const dataDir = tempDir();
    dirs.push(dataDir);
    const store = new SqliteStore({ dataDir, retentionChars: 50_000_000, background });
    const job = makeJob({ id: newId() });
    await store.createJob(job);
    const before = statSync(databaseFile(dataDir)).size;
    for (let i = 0; i < 32; i++) await store.append(job.id, Buffer.alloc(256 * 1024, 0x61 + (i % 26)));
    return { store, grown: () => statSync(databaseFile(dataDir)).size - before };
  }

  test('the server\'s store checkpoints in the background, before the WAL reaches the automatic threshold', async () => {
    const { store, grown } = await fill(true);
    await waitFor(() => grown() >= 8 * 1024 * 1024, 10_000, 'the 8 MiB to reach the database file');
    await store.close();
  });

  test('a one-shot command\'s store leaves it to SQLite, which copies nothing below its threshold', async () => {
    const { store, grown } = await fill(false);
    // What the test above waits for does not happen by itself here (so it can fail): checked after the
    // same appends, with the store still open.
    assert.ok(grown() < 1024 * 1024, `database file grew by ${grown()} bytes`);
    await store.close();
  });
});
