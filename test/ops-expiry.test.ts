// Expiry: `--expire-after 2s` in the server and `buildlog gc` from the command line, on real SQLite files.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli } from './helpers/cli.js';
import { scrape, value } from './helpers/metrics.js';
import { append, api, createJob, finish, startTestServer, tempDir, waitFor, type TestServer } from './helpers/server.js';

const servers: TestServer[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Appends `n` random (incompressible) 256 KiB chunks. */
async function fill(server: TestServer, id: string, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const chunk = randomBytes(256 * 1024);
    assert.equal((await append(server, id, chunk, i * chunk.length)).status, 200);
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

describe('expiry', () => {
  test('--expire-after 2s deletes finished jobs with their logs (404, space reclaimed), never a running one', { timeout: 60_000 }, async () => {
    const dataDir = join(tempDir('buildlog-expiry-'), 'data');
    dirs.push(dataDir);
    const server = await startTestServer({ dataDir, expireAfterSecs: 2, rateLimitPerResource: 1_000_000 });
    servers.push(server);
    const running = await createJob(server);
    const runningLog = await fill(server, running, 4);
    const done = [await createJob(server), await createJob(server, 'run')];
    for (const id of done) await fill(server, id, 8);
    const full = await server.store.diskUsage();
    const follower = fetch(`${server.url}/v2/logs/${running}?stream=1&raw=1`);
    for (const [i, id] of done.entries()) assert.equal((await finish(server, id, 'SUCCEEDED', i === 0 ? 'build' : 'run')).status, 200);

    // The sweeper runs every second; wait until it has taken both.
    await waitFor(async () => (await fetch(`${server.url}/v2/logs/${done[1]}`)).status === 404, 20_000, 'the finished jobs to expire');
    for (const id of done) {
      const log = await fetch(`${server.url}/v2/logs/${id}`);
      assert.equal(log.status, 404);
      assert.equal(((await log.json()) as { error: { type: string } }).error.type, 'record-not-found');
    }
    assert.equal((await fetch(`${server.url}/v2/actor-builds/${done[0]}`)).status, 404);
    assert.equal((await fetch(`${server.url}/v2/actor-runs/${done[1]}`)).status, 404);

    // The running job (older than 2 s by now) is untouched and still takes appends.
    const job = (await (await api(server)(`/v2/actor-builds/${running}`)).json()) as { data: { status: string; startedAt: string } };
    assert.equal(job.data.status, 'RUNNING');
    assert.ok(Date.now() - Date.parse(job.data.startedAt) > 2000);
    const more = Buffer.from('still running\n');
    assert.equal((await append(server, running, more, runningLog.length)).status, 200);
    assert.equal((await finish(server, running, 'FAILED')).status, 200);
    const followed = Buffer.from(await (await follower).arrayBuffer());
    assert.ok(followed.equals(Buffer.concat([runningLog, more])), 'its follower got the whole log');

    // Space: the 4 MiB of the two expired logs left the database's pages, and the file shrank.
    const usage = await server.store.diskUsage();
    assert.ok(full - usage >= 3.5 * 1024 * 1024, `pages in use ${full} -> ${usage}`);
    const m = await scrape(server);
    assert.equal(value(m, 'buildlog_expired_jobs_total'), 2);
    assert.equal(value(m, 'buildlog_jobs', { kind: 'run', status: 'SUCCEEDED' }), 0);

    // The last one expires too, now that it is finished.
    await waitFor(async () => (await fetch(`${server.url}/v2/logs/${running}`)).status === 404, 20_000, 'the last job to expire');
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    const size = statSync(join(dataDir, 'buildlog.db')).size;
    assert.ok(size < 1024 * 1024, `the file shrank to ${size} bytes`);
  });

  test('buildlog gc --older-than: --dry-run lists, then deletes only finished jobs older than that', { timeout: 60_000 }, async () => {
    const dataDir = join(tempDir('buildlog-gc-'), 'data');
    dirs.push(dataDir);
    const server = await startTestServer({ dataDir, expireAfterSecs: 0 });
    const old = await createJob(server);
    await fill(server, old, 2);
    assert.equal((await finish(server, old)).status, 200);
    const running = await createJob(server);
    await fill(server, running, 1);
    const young = await createJob(server);
    assert.equal((await finish(server, young)).status, 200);
    await server.close();
    // Ten days ago, as far as the database knows (waiting a week is not an option).
    const db = new Database(join(dataDir, 'buildlog.db'));
    db.prepare('UPDATE jobs SET finished_at = ? WHERE id = ?').run(Date.now() - 10 * 86_400_000, old);
    db.close();

    const dry = await runCli(['gc', '--data', dataDir, '--older-than', '7d', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, `${old}\n`);
    assert.match(dry.stderr, /1 finished jobs are older than 7d; nothing deleted/);
    const gc = await runCli(['gc', '--data', dataDir, '--older-than', '7d']);
    assert.equal(gc.code, 0, gc.stderr);
    assert.match(gc.stderr, /Deleted 1 finished jobs older than 7d with their logs; \d+ bytes freed/);
    const bad = await runCli(['gc', '--data', dataDir, '--older-than', 'soon']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--older-than must be a duration/);

    const again = await startTestServer({ dataDir, expireAfterSecs: 0 });
    servers.push(again);
    assert.equal((await fetch(`${again.url}/v2/logs/${old}`)).status, 404);
    assert.equal((await fetch(`${again.url}/v2/logs/${running}`)).status, 200);
    assert.equal((await fetch(`${again.url}/v2/logs/${young}`)).status, 200);
  });
});
