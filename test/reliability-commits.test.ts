// What the README says of commits, on the real `buildlog serve` (dist/) and its SQLite file: WAL mode;
// `synchronous=FULL` by default, so every commit fsyncs the WAL (`--fsync no`: NORMAL, the WAL is synced
// at checkpoints only); group commit, so concurrent appends share commits; and an append is acknowledged
// only once its commit is visible to another connection on the file. The server runs under strace, which
// counts its fsync/fdatasync calls on `buildlog.db-wal` (Debian's strace: scripts/ensure-test-tools.sh).
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { BIN, spawnServer } from './helpers/cli.js';
import { histogramCount, scrape } from './helpers/metrics.js';
import { tempDir } from './helpers/server.js';

const TOKEN = 'reliability-commits-token-0123456789';
const headers = { authorization: `Bearer ${TOKEN}` };
const dirs: string[] = [];
const pids = new Set<number>();
after(() => {
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** `buildlog serve` under strace; stop() ends the server (not strace, which would leave it running) and counts WAL syncs. */
async function serveTraced(extra: string[] = []) {
  const dir = tempDir('buildlog-commits-');
  dirs.push(dir);
  const trace = join(dir, 'fsync.trace');
  const strace = ['strace', '-f', '-qq', '-y', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-o', trace];
  const data = join(dir, 'data');
  const server = await spawnServer(['--data', data, '--rate-limit-resource', '1000000', ...extra], { BUILDLOG_TOKEN: TOKEN }, 20_000, {
    command: [...strace, process.execPath, BIN],
  });
  const tracer = server.child.pid!;
  const pid = Number(readFileSync(`/proc/${tracer}/task/${tracer}/children`, 'utf8').trim().split(/\s+/)[0]);
  pids.add(pid);
  // A second connection on the file, as any other process would open it.
  const reader = new Database(join(data, 'buildlog.db'), { readonly: true, fileMustExist: true });
  return {
    url: server.url,
    reader,
    logLength: (id: string) => (reader.prepare('SELECT log_length AS n FROM jobs WHERE id = ?').get(id) as { n: number }).n,
    async stop(): Promise<number> {
      reader.close();
      const exited = new Promise((r) => server.child.once('close', r));
      process.kill(pid, 'SIGTERM');
      await exited;
      pids.delete(pid);
      return readFileSync(trace, 'utf8').split('\n').filter((l) => /^\d+\s+f(data)?sync\(\d+<[^>]*\/buildlog\.db-wal>\)\s+=\s+0/.test(l)).length;
    },
  };
}

type Traced = Awaited<ReturnType<typeof serveTraced>>;

async function createJob(server: Traced): Promise<string> {
  const res = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 201);
  return ((await res.json()) as { data: { id: string } }).data.id;
}

/** Appends a line; once acknowledged, the other connection must see the log at least as long as the answer says. */
async function appendChecked(server: Traced, id: string, line: string): Promise<void> {
  const res = await fetch(`${server.url}/v2/logs/${id}/chunks`, { method: 'POST', headers, body: line });
  assert.equal(res.status, 200);
  const acked = Number(res.headers.get('x-log-length'));
  const stored = server.logLength(id);
  assert.ok(stored >= acked, `acknowledged ${acked} bytes, the file holds ${stored}`);
}

const commits = async (server: Traced) => histogramCount(await scrape(server), 'buildlog_store_commit_duration_seconds');

/** 20 appends one after the other, then 10 rounds of 20 at once (one per job); commit counts of each phase. */
async function load(server: Traced) {
  const ids = await Promise.all(Array.from({ length: 20 }, () => createJob(server)));
  const c0 = await commits(server);
  for (let i = 0; i < 20; i++) await appendChecked(server, ids[0]!, `sequential line ${i}\n`);
  const c1 = await commits(server);
  for (let round = 0; round < 10; round++) await Promise.all(ids.map((id, i) => appendChecked(server, id, `round ${round} job ${i}\n`)));
  const c2 = await commits(server);
  return { sequential: c1 - c0, concurrent: c2 - c1, total: c2 };
}

describe('commits', () => {
  test('WAL, synchronous=FULL (a WAL fsync per commit), group commit, acknowledged only once committed', { timeout: 120_000 }, async (t) => {
    const server = await serveTraced();
    assert.equal(server.reader.pragma('journal_mode', { simple: true }), 'wal');
    const { sequential, concurrent, total } = await load(server);
    // One after the other, each append has a commit of its own.
    assert.equal(sequential, 20);
    // 200 appends that arrive together share commits.
    assert.ok(concurrent >= 1 && concurrent < 200, `${concurrent} commits for 200 concurrent appends`);
    const walSyncs = await server.stop();
    t.diagnostic(`commits: ${sequential} for 20 sequential appends, ${concurrent} for 200 concurrent ones; ${walSyncs} WAL fsyncs for ${total} commits`);
    assert.ok(walSyncs >= total, `${walSyncs} fsyncs of the WAL for ${total} commits`);
  });

  test('--fsync no: synchronous=NORMAL, the WAL is not synced at each commit', { timeout: 120_000 }, async (t) => {
    const server = await serveTraced(['--fsync', 'no']);
    assert.equal(server.reader.pragma('journal_mode', { simple: true }), 'wal');
    const { total } = await load(server);
    const walSyncs = await server.stop();
    t.diagnostic(`${walSyncs} WAL fsyncs for ${total} commits`);
    assert.ok(walSyncs < total / 2, `${walSyncs} fsyncs of the WAL for ${total} commits`);
  });
});
