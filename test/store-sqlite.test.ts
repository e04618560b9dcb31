import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore } from '../src/store/sqlite.js';
import { SCHEMA_VERSION } from '../src/store/sqlite-schema.js';
import { StoreOpenError } from '../src/store/errors.js';
import { newId } from '../src/core/ids.js';
import type { Store } from '../src/store/store.js';
import { storeContract } from './contracts/store.contract.js';

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'buildlog-sqlite-'));
/** Takes a version 4 file back to what version 3 had: no status times. */
const UNDO_4 = 'DROP INDEX jobs_aborting; ALTER TABLE jobs DROP COLUMN status_at;';

storeContract('SqliteStore', async ({ retentionChars }) => {
  const dataDir = tempDir();
  const opened: Store[] = [];
  const openOne = (): Store => {
    const s = new SqliteStore({ dataDir, retentionChars });
    opened.push(s);
    return s;
  };
  return {
    store: openOne(),
    reopen: async () => openOne(),
    async cleanup() {
      for (const s of opened) await s.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

/** The tables of an SQLite file, read without buildlog. */
function tablesOf(file: string): string[] {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map(
      (r) => r.name,
    );
  } finally {
    db.close();
  }
}

function expectRefused(dataDir: string, pattern: RegExp): StoreOpenError {
  let caught: unknown;
  try {
    const s = new SqliteStore({ dataDir, retentionChars: 1000 });
    void s.close();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof StoreOpenError, `expected StoreOpenError, got ${String(caught)}`);
  assert.equal(caught.name, 'StoreOpenError');
  assert.match(caught.message, pattern);
  assert.ok(caught.message.includes(join(dataDir, 'buildlog.db')), `message names the file: ${caught.message}`);
  return caught;
}

describe('SqliteStore: group commit and close', () => {
  test('close commits the appends still queued for the next group commit', async () => {
    const dir = tempDir();
    try {
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      await store.createJob({
        id: 'job00000000000001', kind: 'run', userId: 'u', actId: 'a', buildId: null, buildNumber: null,
        status: 'RUNNING', statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {},
        startedAt: 1, finishedAt: null,
      });
      const pending = ['a', 'b', 'c'].map((s) => store.append('job00000000000001', Buffer.from(s)));
      await store.close();
      assert.deepEqual(await Promise.all(pending), [
        { kind: 'appended', start: 0, end: 1 },
        { kind: 'appended', start: 1, end: 2 },
        { kind: 'appended', start: 2, end: 3 },
      ]);
      await assert.rejects(store.append('job00000000000001', Buffer.from('d')), /closed/);
      const again = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      assert.deepEqual(await again.readLog('job00000000000001', 0, 10), { start: 0, end: 3, data: Buffer.from('abc') });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteStore: how running logs are stored', () => {
  test('a running log takes little more room than its bytes, appended line by line or a few KiB at a time', async () => {
    const dir = tempDir();
    const store = new SqliteStore({ dataDir: dir, retentionChars: 50_000_000, background: false });
    try {
      const job = (id: string) => ({
        id, kind: 'run' as const, userId: 'u', actId: 'a', buildId: null, buildNumber: null,
        status: 'RUNNING' as const, statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {},
        startedAt: 1, finishedAt: null,
      });
      const ids = Array.from({ length: 6 }, (_, i) => `job0000000000000${i}`);
      for (const id of ids) await store.createJob(job(id));
      const before = await store.diskUsage();
      const line = Buffer.from(`${'x'.repeat(99)}\n`);
      const block = Buffer.alloc(4096, 'a few KiB of output at a time\n');
      let appended = 0;
      // Interleaved, as producers of several jobs append at once: 100-byte lines to three logs, 4 KiB chunks to three.
      for (let round = 0; round < 150; round++) {
        const pending: Promise<unknown>[] = [];
        for (const [i, id] of ids.entries()) {
          const data = i < 3 ? Buffer.concat(Array.from({ length: 10 }, () => line)) : block;
          if (i < 3) for (let k = 0; k < 10; k++) pending.push(store.append(id, line));
          else pending.push(store.append(id, block));
          appended += data.length;
        }
        await Promise.all(pending);
      }
      const used = (await store.diskUsage()) - before;
      // Rows of a few KiB that spill out of their B-tree page take whole overflow pages: about 4x their bytes.
      assert.ok(used < 1.35 * appended, `${used} bytes of pages for ${appended} bytes of logs`);
      for (const [i, id] of ids.entries()) {
        const expected = i < 3 ? Buffer.concat(Array.from({ length: 1500 }, () => line)) : Buffer.concat(Array.from({ length: 150 }, () => block));
        assert.ok((await store.readLog(id, 0, 10_000_000))!.data.equals(expected), `log ${i} reads back whole`);
      }
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('SqliteStore: refuses files that are not its own', () => {
  test('a buildlog.db created by another application is refused and left unchanged', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const foreign = new Database(file);
      foreign.exec("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('ACME');");
      foreign.close();
      expectRefused(dir, /another application/);
      assert.deepEqual(tablesOf(file), ['customers']);
      const db = new Database(file, { readonly: true });
      assert.deepEqual(db.prepare('SELECT name FROM customers').all(), [{ name: 'ACME' }]);
      db.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a foreign file that happens to have its own `meta` table is refused and left unchanged', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const foreign = new Database(file);
      foreign.exec(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('version', '7');" +
          'CREATE TABLE orders (id INTEGER PRIMARY KEY);',
      );
      foreign.close();
      expectRefused(dir, /buildlog metadata|another application/);
      assert.deepEqual(tablesOf(file), ['meta', 'orders']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a foreign `meta` table of a different shape is refused with a StoreOpenError too', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const foreign = new Database(file);
      foreign.exec('CREATE TABLE meta (id INTEGER PRIMARY KEY, name TEXT);');
      foreign.close();
      expectRefused(dir, /buildlog metadata|another application|cannot be opened/);
      assert.deepEqual(tablesOf(file), ['meta']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a database of another app id or another schema version is refused', async () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      await store.close();
      const db = new Database(file);
      db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema'").run();
      db.close();
      expectRefused(dir, /schema version 99/);
      const db2 = new Database(file);
      db2.prepare("UPDATE meta SET value = '1' WHERE key = 'schema'").run();
      db2.prepare("UPDATE meta SET value = 'someone-else' WHERE key = 'app'").run();
      db2.close();
      expectRefused(dir, /belongs to "someone-else"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a schema 1 database is migrated: its logs keep working, their CRC is unknown, new logs get one', async () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      const user = { id: 'u1', username: 'old', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 };
      await store.createUser(user);
      const job = { id: 'OldJob00000000001', kind: 'build' as const, userId: 'u1', actId: 'a', buildId: null, buildNumber: null,
        status: 'RUNNING' as const, statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {}, startedAt: 1, finishedAt: null };
      await store.createJob(job);
      await store.append(job.id, Buffer.from('before the upgrade\n'));
      await store.close();
      // What version 1 looked like: no log_crc column (2), no chunk checksums, packing or operations indexes (3),
      // no status times (4).
      const db = new Database(file);
      db.exec(`${UNDO_4} ALTER TABLE jobs DROP COLUMN log_crc; DROP INDEX jobs_finished; DROP INDEX jobs_by_status;
        ALTER TABLE jobs DROP COLUMN packed; ALTER TABLE chunks DROP COLUMN crc; ALTER TABLE chunks DROP COLUMN size;
        UPDATE meta SET value = '1' WHERE key = 'schema'`);
      db.close();

      const upgraded = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      assert.deepEqual(await upgraded.logChecksum(job.id), { length: 19, crc32: null });
      await upgraded.append(job.id, Buffer.from('after\n'), 19);
      assert.deepEqual(await upgraded.logChecksum(job.id), { length: 25, crc32: null }, 'a CRC that missed bytes is never made up');
      await upgraded.createJob({ ...job, id: 'NewJob00000000001' });
      await upgraded.append('NewJob00000000001', Buffer.from('new\n'));
      assert.deepEqual(await upgraded.logChecksum('NewJob00000000001'), { length: 4, crc32: crc32('new\n') });
      await upgraded.close();
      const reread = new Database(file);
      assert.equal((reread.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, String(SCHEMA_VERSION));
      reread.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a schema 2 database (log CRCs, no chunk checksums) is migrated: its rows verify by length, its finished log packs and reads the same', async () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1_000_000, background: false });
      await store.createUser({ id: 'u1', username: 'old', tokenHash: 'h', proxyPassword: 'p', createdAt: 1 });
      const job = { id: 'DoneJob0000000001', kind: 'build' as const, userId: 'u1', actId: 'a', buildId: null, buildNumber: null,
        status: 'RUNNING' as const, statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {}, startedAt: 1, finishedAt: null };
      await store.createJob(job);
      await store.createJob({ ...job, id: 'LiveJob0000000001' });
      const done = Buffer.from('npm install\n'.repeat(40_000));
      for (let i = 0; i < done.length; i += 100_000) await store.append(job.id, done.subarray(i, i + 100_000));
      await store.append('LiveJob0000000001', Buffer.from('running\n'));
      await store.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: 2 });
      await store.close();
      // What version 2 looked like: log_crc and the lists' index, but no chunk checksums, packing or operations indexes.
      const db = new Database(file);
      db.exec(`${UNDO_4} DROP INDEX jobs_finished; DROP INDEX jobs_by_status; ALTER TABLE jobs DROP COLUMN packed;
        ALTER TABLE chunks DROP COLUMN crc; ALTER TABLE chunks DROP COLUMN size; UPDATE meta SET value = '2' WHERE key = 'schema'`);
      db.close();

      const upgraded = new SqliteStore({ dataDir: dir, retentionChars: 1_000_000, background: false });
      assert.deepEqual(await upgraded.logChecksum(job.id), { length: done.length, crc32: crc32(done) }, 'version 2 CRCs are kept');
      assert.deepEqual(await upgraded.verify('quick'), [], 'rows without a checksum are checked for length');
      assert.equal(await upgraded.packFinishedLogs(), 1);
      const read = await upgraded.readLog(job.id, 0, done.length);
      assert.ok(read?.data.equals(done), 'the packed log reads the same');
      assert.deepEqual(await upgraded.verify('full'), []);
      assert.equal((await upgraded.append('LiveJob0000000001', Buffer.from('more\n'), 8)).kind, 'appended');
      assert.equal((await upgraded.readLog('LiveJob0000000001', 0, 100))?.data.toString(), 'running\nmore\n');
      await upgraded.close();
      const reread = new Database(file, { readonly: true });
      assert.equal((reread.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string }).value, String(SCHEMA_VERSION));
      const indexes = (reread.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'jobs_%' ORDER BY name").all() as { name: string }[]).map((r) => r.name);
      assert.deepEqual(indexes, ['jobs_aborting', 'jobs_by_actor', 'jobs_by_status', 'jobs_by_user', 'jobs_by_user_kind', 'jobs_finished', 'jobs_unfinished']);
      reread.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a schema 3 database is migrated: an ABORTING job counts its grace period from its last activity', async () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000, background: false });
      const job = { id: 'AbortJob000000001', kind: 'run' as const, userId: 'u1', actId: 'a', buildId: null, buildNumber: null,
        status: 'RUNNING' as const, statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {}, startedAt: 1, finishedAt: null };
      await store.createJob(job);
      await store.createJob({ ...job, id: 'LiveJob0000000001' });
      await store.updateJobStatus(job.id, 'RUNNING', { status: 'ABORTING' });
      await store.close();
      const db = new Database(file);
      db.exec(`${UNDO_4} UPDATE jobs SET active_at = 5000 WHERE id = '${job.id}'; UPDATE meta SET value = '3' WHERE key = 'schema'`);
      db.close();

      const upgraded = new SqliteStore({ dataDir: dir, retentionChars: 1000, background: false });
      assert.deepEqual((await upgraded.abortingSince(5000, 10)).map((j) => j.id), []);
      assert.deepEqual((await upgraded.abortingSince(5001, 10)).map((j) => j.id), [job.id]);
      await upgraded.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a garbage file is refused with a clear message and not overwritten', () => {
    const dir = tempDir();
    try {
      const file = join(dir, 'buildlog.db');
      const garbage = Buffer.from('this is not a database, just some text that happens to be here\n'.repeat(200));
      writeFileSync(file, garbage);
      expectRefused(dir, /not a usable SQLite database|cannot be opened/);
      assert.ok(readFileSync(file).equals(garbage));
      assert.equal(existsSync(join(dir, 'buildlog.db-wal')) && readFileSync(join(dir, 'buildlog.db-wal')).length > 0, false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an empty (zero-byte) buildlog.db is initialised as a new store', async () => {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'buildlog.db'), '');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      assert.equal(await store.countUsers(), 0);
      await store.close();
      const again = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      await again.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a data dir that does not exist yet is created', async () => {
    const parent = tempDir();
    try {
      const dir = join(parent, 'a', 'b');
      const store = new SqliteStore({ dataDir: dir, retentionChars: 1000 });
      assert.ok(existsSync(join(dir, 'buildlog.db')));
      await store.close();
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('SqliteStore: the search index is derived data', () => {
  const job = (userId: string) => ({
    id: newId(), kind: 'build' as const, userId, actId: 'a', buildId: null, buildNumber: null, status: 'RUNNING' as const,
    statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {}, startedAt: 1, finishedAt: null,
  });
  const search = (store: Store, text: string) => store.searchLogs({ userId: 'u', text, offset: 0, limit: 10, linesPerJob: 5 });

  test('a missing or damaged search.db is rebuilt from the logs', async () => {
    const dataDir = tempDir();
    try {
      let store = new SqliteStore({ dataDir, retentionChars: 1_000_000, indexLogs: true });
      const j = job('u');
      await store.createJob(j);
      await store.append(j.id, Buffer.from('line one\nthe needle is here\n'));
      assert.equal((await search(store, 'needle')).total, 1);
      await store.close();
      for (const damage of [() => rmSync(join(dataDir, 'search.db')), () => writeFileSync(join(dataDir, 'search.db'), 'not a database at all, not even close')]) {
        for (const suffix of ['-wal', '-shm']) rmSync(join(dataDir, `search.db${suffix}`), { force: true });
        damage();
        store = new SqliteStore({ dataDir, retentionChars: 1_000_000 });
        const page = await search(store, 'needle');
        assert.deepEqual(page.hits.map((h) => h.lines.map((l) => [l.line, l.offset, l.text])), [[[2, 9, 'the needle is here']]]);
        await store.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
