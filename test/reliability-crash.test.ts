// Crash safety with the real `buildlog serve` child process: kill -9 while producers append, restart on
// the same data dir and port, and check that nothing acknowledged was lost and nothing was doubled; and
// the inactivity timeout that ends jobs whose producer (or the server itself) died.
// Needs `npm run build` first (the bin runs dist/).
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { spawnServer, type ServerProcess } from './helpers/cli.js';
import { tempDir } from './helpers/server.js';

const TOKEN = 'reliability-crash-token-0123456789abc';
const auth = { authorization: `Bearer ${TOKEN}` };

const children = new Set<ServerProcess>();
const dirs: string[] = [];
after(() => {
  for (const s of children) s.child.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dataDir(): string {
  const d = tempDir('buildlog-crash-');
  dirs.push(d);
  return d;
}

/** `buildlog serve` on `dir` (and `port`, when restarting), without the per-job rate limit getting in the way. */
async function serve(dir: string, port?: number, extra: string[] = []): Promise<ServerProcess & { port: number }> {
  const args = ['--data', dir, '--rate-limit-resource', '1000000', ...(port ? ['--port', String(port)] : []), ...extra];
  const server = await spawnServer(args, { BUILDLOG_TOKEN: TOKEN });
  children.add(server);
  server.child.once('exit', () => children.delete(server));
  return { ...server, port: Number(new URL(server.url).port) };
}

/** SIGKILL, and wait until the process is gone. */
async function crash(server: ServerProcess): Promise<void> {
  const gone = new Promise((r) => server.child.once('exit', r));
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
  await gone;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function createJob(url: string): Promise<string> {
  const res = await fetch(`${url}/v2/actor-builds`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' });
  assert.equal(res.status, 201, await res.clone().text());
  return ((await res.json()) as { data: { id: string } }).data.id;
}

async function readLog(url: string, id: string): Promise<Buffer> {
  const res = await fetch(`${url}/v2/logs/${id}?raw=1`);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

async function jobStatus(url: string, id: string): Promise<{ status: string; statusMessage: string | null; finishedAt: string | null }> {
  const res = await fetch(`${url}/v2/actor-builds/${id}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { data: { status: string; statusMessage: string | null; finishedAt: string | null } }).data;
}

/**
 * Chunk `k` of producer `p`: numbered lines, mostly small (merged into one stored row), every tenth one
 * larger than the store's 64 KiB merge limit, so both ways of storing an append are crashed into.
 */
function chunkOf(p: number, k: number): Buffer {
  const lines = k % 10 === 9 ? 1100 : 1 + ((k * 7 + p) % 25);
  let text = '';
  for (let i = 0; i < lines; i++) text += `job ${String(p).padStart(2, '0')} chunk ${String(k).padStart(4, '0')} line ${String(i).padStart(4, '0')} ......\n`;
  return Buffer.from(text);
}

describe('kill -9 under 20 concurrent producers', () => {
  test('every acknowledged byte survives two crashes and retried logs are exact', { timeout: 240_000 }, async () => {
    const PRODUCERS = 20;
    const CHUNKS = 120;
    const dir = dataDir();
    let server = await serve(dir);
    const port = server.port;
    const url = () => server.url;

    const expected = Array.from({ length: PRODUCERS }, (_, p) => Array.from({ length: CHUNKS }, (_, k) => chunkOf(p, k)));
    const ids = await Promise.all(expected.map(() => createJob(url())));

    // While the server is down (from just before the kill until the check after the restart) failed
    // producers wait here, so the check sees exactly what survived the crash.
    let gate: Promise<void> = Promise.resolve();
    let openGate = () => {};
    let killsDone!: () => void;
    const allKillsDone = new Promise<void>((r) => (killsDone = r));

    interface Progress {
      /** End offset of the last acknowledged chunk. */
      acked: number;
      chunksAcked: number;
      /** The chunk being sent and not yet acknowledged (its length), if any. */
      inFlight: number;
      duplicates: number;
      errors: number;
    }
    const progress: Progress[] = expected.map(() => ({ acked: 0, chunksAcked: 0, inFlight: 0, duplicates: 0, errors: 0 }));
    const fatal: string[] = [];

    const producer = async (p: number) => {
      let offset = 0;
      for (let k = 0; k < CHUNKS; k++) {
        // Every producer is still mid-log at every crash.
        if (k === CHUNKS - 1) await allKillsDone;
        const chunk = expected[p]![k]!;
        progress[p]!.inFlight = chunk.length;
        for (;;) {
          let status: number;
          let body: { data?: { offset: number; length: number; duplicate: boolean } };
          try {
            const res = await fetch(`${url()}/v2/logs/${ids[p]}/chunks`, {
              method: 'POST',
              headers: { ...auth, 'content-type': 'application/octet-stream', 'x-log-offset': String(offset) },
              body: new Uint8Array(chunk),
            });
            status = res.status;
            body = (await res.json()) as typeof body;
          } catch {
            // The server is gone (connection refused or reset): retry the same chunk at the same offset.
            progress[p]!.errors++;
            await gate;
            await sleep(20);
            continue;
          }
          if (status === 200) {
            // A retried chunk that had been committed before the crash is a duplicate: the log already ends after it.
            assert.equal(body.data!.offset, offset);
            assert.ok(body.data!.length >= offset + chunk.length);
            if (body.data!.duplicate) progress[p]!.duplicates++;
            break;
          }
          if (status === 400) {
            fatal.push(`producer ${p} chunk ${k} at ${offset}: ${JSON.stringify(body)}`);
            return;
          }
          progress[p]!.errors++;
          await gate;
          await sleep(20);
        }
        offset += chunk.length;
        Object.assign(progress[p]!, { acked: offset, chunksAcked: k + 1, inFlight: 0 });
      }
    };
    const producers = expected.map((_, p) => producer(p));

    const totalAcked = () => progress.reduce((s, x) => s + x.chunksAcked, 0);
    for (const share of [1 / 3, 2 / 3]) {
      await until(() => totalAcked() >= PRODUCERS * CHUNKS * share || fatal.length > 0, `${share} of the chunks`, 120_000);
      assert.deepEqual(fatal, []);
      gate = new Promise((r) => (openGate = r));
      await crash(server);
      const snapshot = progress.map((x) => ({ ...x }));
      assert.ok(snapshot.every((x) => x.chunksAcked < CHUNKS), 'no producer had finished at the crash');

      server = await serve(dir, port);
      assert.equal(server.port, port, 'restarted on the same port');
      for (let p = 0; p < PRODUCERS; p++) {
        const log = await readLog(url(), ids[p]!);
        const { acked, inFlight } = snapshot[p]!;
        const full = Buffer.concat(expected[p]!);
        assert.ok(log.length >= acked, `job ${p}: ${log.length} bytes after the crash, ${acked} were acknowledged`);
        // At most the one unacknowledged chunk may have been committed as well (its answer was lost).
        assert.ok(log.length === acked || log.length === acked + inFlight, `job ${p}: ${log.length} bytes, acked ${acked}, in flight ${inFlight}`);
        assert.ok(log.equals(full.subarray(0, log.length)), `job ${p}: the surviving bytes are exactly the appended ones`);
      }
      openGate();
    }
    killsDone();
    await Promise.all(producers);
    assert.deepEqual(fatal, []);

    for (let p = 0; p < PRODUCERS; p++) {
      const res = await fetch(`${url()}/v2/actor-builds/${ids[p]}`, {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/json' },
        body: '{"status":"SUCCEEDED"}',
      });
      assert.equal(res.status, 200);
      const log = await readLog(url(), ids[p]!);
      const full = Buffer.concat(expected[p]!);
      assert.equal(log.length, full.length, `job ${p}: length`);
      assert.ok(log.equals(full), `job ${p}: no duplicate, no gap`);
    }
    const errors = progress.reduce((s, x) => s + x.errors, 0);
    assert.ok(errors > 0, 'the crashes did interrupt producers');
    assert.equal(await server.stop(), 0);
  });
});

describe('inactivity timeout', () => {
  test('a silent job becomes TIMED-OUT and its live follower ends; heartbeats keep a job alive', { timeout: 90_000 }, async () => {
    const server = await serve(dataDir(), undefined, ['--inactivity-timeout-secs', '2']);
    const url = server.url;
    const heartbeat = (id: string) =>
      fetch(`${url}/v2/logs/${id}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: '' });

    // Created first, so it is the older of the two: only its heartbeats keep it RUNNING.
    const alive = await createJob(url);
    let beating = true;
    let beats = 0;
    const beater = (async () => {
      while (beating) {
        const res = await heartbeat(alive);
        assert.equal(res.status, 200, await res.clone().text());
        assert.deepEqual(((await res.json()) as { data: object }).data, { id: alive, offset: 0, length: 0, duplicate: false });
        beats++;
        await sleep(250); // the producer's heartbeat interval: the period is the behaviour under test
      }
    })();

    const silent = await createJob(url);
    const res = await fetch(`${url}/v2/logs/${silent}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'last words\n' });
    assert.equal(res.status, 200);
    const started = Date.now();
    const follower = await fetch(`${url}/v2/logs/${silent}?stream=1`, { signal: AbortSignal.timeout(60_000) });
    assert.equal(follower.status, 200);
    // The stream ends by itself once the job times out.
    assert.equal(await follower.text(), 'last words\n');
    assert.ok(Date.now() - started >= 1000, 'not before the timeout');
    const timedOut = await jobStatus(url, silent);
    assert.equal(timedOut.status, 'TIMED-OUT');
    assert.match(timedOut.statusMessage ?? '', /No output or heartbeat for 2 s/);
    assert.ok(timedOut.finishedAt);
    // Appends to it are refused now; its producer is gone anyway.
    const late = await fetch(`${url}/v2/logs/${silent}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'x' });
    assert.equal(late.status, 400);

    // The heartbeat job is older than the timed-out one and still RUNNING, also after three timeouts.
    await until(async () => Date.now() - started > 6000, 'three timeouts');
    assert.equal((await jobStatus(url, alive)).status, 'RUNNING');
    assert.ok(beats > 10);

    // Once the heartbeats stop, it times out as well.
    beating = false;
    await beater;
    await until(async () => (await jobStatus(url, alive)).status === 'TIMED-OUT', 'the heartbeat job to time out');
    assert.equal(await server.stop(), 0);
  });

  test('jobs left RUNNING by a crash of the server itself time out after the restart', { timeout: 90_000 }, async () => {
    const dir = dataDir();
    let server = await serve(dir);
    const port = server.port;
    const id = await createJob(server.url);
    const res = await fetch(`${server.url}/v2/logs/${id}/chunks`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: 'before the crash\n' });
    assert.equal(res.status, 200);
    await crash(server);

    server = await serve(dir, port, ['--inactivity-timeout-secs', '3']);
    const follower = await fetch(`${server.url}/v2/logs/${id}?stream=1&raw=1`, { signal: AbortSignal.timeout(60_000) });
    assert.equal(await follower.text(), 'before the crash\n');
    await until(async () => (await jobStatus(server.url, id)).status === 'TIMED-OUT', 'the orphaned job to time out');
    assert.equal(await server.stop(), 0);
  });
});
