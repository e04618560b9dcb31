// `buildlog backup` under load and `buildlog check` / the start check against a damaged file, with the
// real CLI on real SQLite files.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, spawnServer } from './helpers/cli.js';
import { append, createJob, finish, startTestServer, tempDir, type TestServer } from './helpers/server.js';

const dirs: string[] = [];
const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('buildlog-ops-');
  dirs.push(d);
  return d;
}

/** Build-like output: what a producer sends, different per job and step. */
const chunkOf = (job: number, step: number) =>
  Buffer.from(`[job ${job}] step ${step}: ${'compiling src/module_'.repeat(1 + ((job * 7 + step) % 9))}done\n`);

async function rawLog(url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/logs/${id}?raw=1`);
  assert.equal(res.status, 200, `log ${id}`);
  return Buffer.from(await res.arrayBuffer());
}

describe('backup', () => {
  test('a backup taken during 20 producers\' appends serves every append acknowledged before it, byte for byte', { timeout: 120_000 }, async () => {
    const dataDir = dir();
    const server = await startTestServer({ dataDir, rateLimitPerResource: 1_000_000 });
    servers.push(server);
    const PRODUCERS = 20;
    const ids = await Promise.all(Array.from({ length: PRODUCERS }, () => createJob(server)));
    // Per job: every acknowledged chunk, in order.
    const acked: Buffer[][] = ids.map(() => []);
    let stop = false;
    const producers = ids.map(async (id, j) => {
      let offset = 0;
      for (let step = 0; !stop && step < 100_000; step++) {
        const chunk = chunkOf(j, step);
        const res = await append(server, id, chunk, offset);
        assert.equal(res.status, 200, await res.clone().text());
        await res.arrayBuffer();
        acked[j]!.push(chunk);
        offset += chunk.length;
      }
    });
    // Let every producer get going, then take the backup while they keep appending.
    while (acked.some((a) => a.length < 5)) await new Promise((r) => setImmediate(r));
    const before = acked.map((a) => Buffer.concat(a));
    const out = join(dir(), 'copy');
    const backup = await runCli(['backup', '--data', dataDir, out], {}, 60_000);
    stop = true;
    await Promise.all(producers);
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(backup.stderr, /Backed up .* \(\d+ bytes/);
    for (const [j, id] of ids.entries()) assert.equal((await finish(server, id)).status, 200, `finish ${j}`);
    const full = acked.map((a) => Buffer.concat(a));
    await server.close();
    servers.splice(servers.indexOf(server), 1);

    const copy = await spawnServer(['--data', out]);
    try {
      let covered = 0;
      for (const [j, id] of ids.entries()) {
        const log = await rawLog(copy.url, id);
        // Everything acknowledged before the backup began, and then only whole acknowledged appends, in order.
        assert.ok(log.length >= before[j]!.length, `job ${j}: ${log.length} bytes in the copy, ${before[j]!.length} acknowledged before the backup`);
        assert.ok(full[j]!.subarray(0, log.length).equals(log), `job ${j}: the copy is a prefix of what was acknowledged`);
        let boundary = 0;
        for (const c of acked[j]!) {
          if (boundary === log.length) break;
          boundary += c.length;
        }
        assert.equal(boundary, log.length, `job ${j}: the copy ends at an append boundary`);
        const job = (await (await fetch(`${copy.url}/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
        assert.equal(job.data.status, 'RUNNING', 'as it was when copied');
        covered += log.length;
      }
      assert.ok(covered > 0);
      const check = await runCli(['check', '--data', out]);
      assert.equal(check.code, 0, check.stderr);
    } finally {
      await copy.stop();
    }
  });

  test('backup refuses a missing source and a target that holds a database already', async () => {
    const empty = dir();
    const missing = await runCli(['backup', '--data', join(empty, 'nothing'), join(empty, 'out')]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /does not exist; nothing to back up/);
    const server = await startTestServer({ dataDir: join(empty, 'data') });
    await server.close();
    const first = await runCli(['backup', '--data', join(empty, 'data'), join(empty, 'out')]);
    assert.equal(first.code, 0, first.stderr);
    const second = await runCli(['backup', '--data', join(empty, 'data'), join(empty, 'out')]);
    assert.equal(second.code, 2);
    assert.match(second.stderr, /exists already; back up into an empty directory/);
  });
});

describe('integrity', () => {
  test('a byte flipped in the middle of the database: `buildlog check` exits 1 naming it, `serve` refuses to start', { timeout: 180_000 }, async () => {
    const dataDir = dir();
    const server = await startTestServer({ dataDir, rateLimitPerResource: 1_000_000 });
    const ids: string[] = [];
    for (let j = 0; j < 6; j++) {
      const id = await createJob(server);
      ids.push(id);
      let offset = 0;
      for (let step = 0; step < 400; step++) {
        const chunk = chunkOf(j, step);
        assert.equal((await append(server, id, chunk, offset)).status, 200);
        offset += chunk.length;
      }
      // Half finished (packed), half still running (plain rows).
      if (j % 2 === 0) assert.equal((await finish(server, id)).status, 200);
    }
    await server.service.store.packFinishedLogs();
    await server.close();

    const healthy = await runCli(['check', '--data', dataDir]);
    assert.equal(healthy.code, 0, healthy.stderr);
    assert.match(healthy.stdout, /buildlog\.db: ok/);

    const file = join(dataDir, 'buildlog.db');
    // The first byte of the in-use page of the logs' rows nearest the middle of the file: a B-tree page's type,
    // or an overflow page's link. A byte of a free page, or of the slack inside a page, would change nothing.
    const db = new Database(file, { readonly: true });
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    const pages = statSync(file).size / pageSize;
    const { pageno } = db
      .prepare("SELECT pageno FROM dbstat WHERE name = 'chunks' AND pagetype IN ('leaf', 'internal', 'overflow') ORDER BY abs(pageno - ?) LIMIT 1")
      .get(Math.floor(pages / 2)) as { pageno: number };
    db.close();
    const middle = (pageno - 1) * pageSize;
    const fd = openSync(file, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, middle);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, middle);
    closeSync(fd);

    const damaged = await runCli(['check', '--data', dataDir]);
    assert.equal(damaged.code, 1, damaged.stdout);
    assert.match(damaged.stderr, /buildlog\.db is damaged:\n {2}(database structure: |log of job [A-Za-z0-9]{17}: |.*(cannot be opened|not a usable SQLite database))/);
    assert.doesNotMatch(damaged.stderr, /\n\s+at /, 'no stack trace');

    const refused = await runCli(['serve', '--port', '0', '--data', dataDir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /buildlog\.db is damaged: .*Run `buildlog check --data .*` for a full report/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  });

  test('a log byte changed behind SQLite\'s back (the file structure intact) is found by its row checksum: `check` exits 1, `serve` refuses', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const server = await startTestServer({ dataDir, rateLimitPerResource: 1_000_000 });
    const packed = await createJob(server);
    const plain = await createJob(server);
    for (const [j, id] of [packed, plain].entries()) {
      let offset = 0;
      for (let step = 0; step < 50; step++) {
        const chunk = chunkOf(j, step);
        assert.equal((await append(server, id, chunk, offset)).status, 200);
        offset += chunk.length;
      }
    }
    assert.equal((await finish(server, packed)).status, 200);
    await server.service.store.packFinishedLogs();
    await server.close();
    assert.equal((await runCli(['check', '--data', dataDir])).code, 0);

    // One byte of each log's first row changed through SQLite itself: its pages stay valid, only the row's CRC can tell.
    const file = join(dataDir, 'buildlog.db');
    const db = new Database(file);
    for (const id of [packed, plain]) {
      const row = db.prepare('SELECT data FROM chunks WHERE job_id = ? AND offset = 0').get(id) as { data: Buffer };
      row.data[Math.floor(row.data.length / 2)]! ^= 0x01;
      db.prepare('UPDATE chunks SET data = ? WHERE job_id = ? AND offset = 0').run(row.data, id);
    }
    assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'SQLite itself sees nothing wrong');
    db.close();

    const damaged = await runCli(['check', '--data', dataDir]);
    assert.equal(damaged.code, 1, damaged.stdout);
    for (const id of [packed, plain]) {
      assert.match(damaged.stderr, new RegExp(`log of job ${id}: row at offset 0 fails its checksum \\(stored bytes damaged\\)`));
    }
    const refused = await runCli(['serve', '--port', '0', '--data', dataDir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, new RegExp(`buildlog\\.db is damaged: .*log of job (${packed}|${plain}): row at offset 0 fails its checksum`));
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  });

  test('check of a data dir without a database exits 2', async () => {
    const result = await runCli(['check', '--data', join(dir(), 'none')]);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /there is no .*buildlog\.db/);
  });
});
