// What the README says of commits, on the real `buildlog serve` (dist/) and its SQLite file: WAL mode;
// group commit, so concurrent appends share commits; and by default an append is acknowledged only once
// it is durable: its commit is visible to another connection on the file, and a flush of the WAL (the
// store's own fdatasync, off the event loop) ended between the request and its answer (`--fsync no`: the
// WAL is synced at checkpoints only). The server runs under strace, which records its
// fsync/fdatasync calls on `buildlog.db-wal` with their times (Debian's strace: scripts/ensure-test-tools.sh).
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

/** A flush of the WAL, from its start to its end (epoch milliseconds, as strace -ttt -T reports them). */
interface WalFlush {
  start: number;
  end: number;
}

/**
 * The store's successful flushes of the WAL (its fdatasync calls; SQLite's checkpoints fsync) in an
 * strace log. A call that overlaps another thread's traced call is split in two lines, `<unfinished ...>`
 * at its start and `<... fdatasync resumed>` with its result and duration, on the same thread id: a
 * checkpoint's fsync does this now and then, and a parser that read whole lines only missed that flush.
 */
function walFlushes(trace: string): WalFlush[] {
  const flushes: WalFlush[] = [];
  const unfinished = new Map<string, number>();
  for (const line of trace.split('\n')) {
    const whole = /^(\d+)\s+(\d+\.\d+) fdatasync\(\d+<[^>]*\/buildlog\.db-wal>(?:\)\s+=\s+0 <(\d+\.\d+)>| <unfinished \.\.\.>)/.exec(line);
    const resumed = /^(\d+)\s+\d+\.\d+ <\.\.\. fdatasync resumed>\)\s+=\s+0 <(\d+\.\d+)>/.exec(line);
    let start: number | undefined;
    let seconds: string | undefined;
    if (whole?.[3]) [start, seconds] = [Number(whole[2]), whole[3]];
    else if (whole) unfinished.set(whole[1]!, Number(whole[2]));
    else if (resumed) [start, seconds] = [unfinished.get(resumed[1]!), resumed[2]];
    if (resumed) unfinished.delete(resumed[1]!);
    if (start !== undefined) flushes.push({ start: start * 1000, end: (start + Number(seconds)) * 1000 });
  }
  return flushes;
}

/** `buildlog serve` under strace; stop() ends the server (not strace, which would leave it running) and returns its WAL flushes. */
async function serveTraced(extra: string[] = []) {
  const dir = tempDir('buildlog-commits-');
  dirs.push(dir);
  const trace = join(dir, 'fsync.trace');
  const strace = ['strace', '-f', '-qq', '-y', '-ttt', '-T', '--seccomp-bpf', '-e', 'trace=fsync,fdatasync', '-o', trace];
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
    async stop(): Promise<WalFlush[]> {
      reader.close();
      const exited = new Promise((r) => server.child.once('close', r));
      process.kill(pid, 'SIGTERM');
      await exited;
      pids.delete(pid);
      return walFlushes(readFileSync(trace, 'utf8'));
    },
  };
}

type Traced = Awaited<ReturnType<typeof serveTraced>>;

async function createJob(server: Traced): Promise<string> {
  const res = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 201);
  return ((await res.json()) as { data: { id: string } }).data.id;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * Appends a line; once acknowledged, the other connection must see the log at least as long as the
 * answer says. Returns when the request left and when its answer arrived.
 */
async function appendChecked(server: Traced, id: string, line: string): Promise<{ sent: number; acked: number }> {
  const sent = now();
  const res = await fetch(`${server.url}/v2/logs/${id}/chunks`, { method: 'POST', headers, body: line });
  const acked = now();
  assert.equal(res.status, 200);
  const length = Number(res.headers.get('x-log-length'));
  const stored = server.logLength(id);
  assert.ok(stored >= length, `acknowledged ${length} bytes, the file holds ${stored}`);
  return { sent, acked };
}

/** The appends during which no flush of the WAL began after the request left and ended before its answer (1 ms either side for the two clocks). */
const unflushed = (windows: { sent: number; acked: number }[], flushes: WalFlush[]) =>
  windows.filter((w) => !flushes.some((f) => f.start >= w.sent - 1 && f.end <= w.acked + 1));

const commits = async (server: Traced) => histogramCount(await scrape(server), 'buildlog_store_commit_duration_seconds');

/** 20 appends one after the other, then 10 rounds of 20 at once (one per job); commit counts of each phase and every append's window. */
async function load(server: Traced) {
  const ids = await Promise.all(Array.from({ length: 20 }, () => createJob(server)));
  const windows: { sent: number; acked: number }[] = [];
  const c0 = await commits(server);
  for (let i = 0; i < 20; i++) windows.push(await appendChecked(server, ids[0]!, `sequential line ${i}\n`));
  const c1 = await commits(server);
  for (let round = 0; round < 10; round++) windows.push(...(await Promise.all(ids.map((id, i) => appendChecked(server, id, `round ${round} job ${i}\n`)))));
  const c2 = await commits(server);
  return { sequential: c1 - c0, concurrent: c2 - c1, total: c2, windows };
}

describe('commits', () => {
  test('WAL, group commit, acknowledged only once committed and flushed to disk', { timeout: 120_000 }, async (t) => {
    const server = await serveTraced();
    assert.equal(server.reader.pragma('journal_mode', { simple: true }), 'wal');
    const { sequential, concurrent, total, windows } = await load(server);
    // One after the other, each append has a commit of its own.
    assert.equal(sequential, 20);
    // 200 appends that arrive together share commits.
    assert.ok(concurrent >= 1 && concurrent < 200, `${concurrent} commits for 200 concurrent appends`);
    const flushes = await server.stop();
    t.diagnostic(`commits: ${sequential} for 20 sequential appends, ${concurrent} for 200 concurrent ones; ${flushes.length} WAL fsyncs for ${total} commits`);
    // One after the other, each commit is flushed by a sync of its own.
    assert.ok(flushes.length >= sequential, `${flushes.length} fsyncs of the WAL for ${total} commits`);
    // Durable before acknowledged: a flush of the WAL ran inside every append's request.
    assert.equal(unflushed(windows, flushes).length, 0, `of ${windows.length} appends, ${unflushed(windows, flushes).length} were answered without a flush of the WAL during them`);
  });

  test('--fsync no: the WAL is not synced at each commit', { timeout: 120_000 }, async (t) => {
    const server = await serveTraced(['--fsync', 'no']);
    assert.equal(server.reader.pragma('journal_mode', { simple: true }), 'wal');
    const { total, windows } = await load(server);
    const flushes = await server.stop();
    t.diagnostic(`${flushes.length} WAL fsyncs for ${total} commits; ${unflushed(windows, flushes).length} of ${windows.length} appends answered without one`);
    assert.ok(flushes.length < total / 2, `${flushes.length} fsyncs of the WAL for ${total} commits`);
    // So the check above can fail: without fsync, appends are answered with no flush during them.
    assert.ok(unflushed(windows, flushes).length > windows.length / 2);
  });
});
