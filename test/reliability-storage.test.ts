// Storage faults, done for real where the machine allows it: a full disk (a 2 MB tmpfs), a data dir
// that turns read-only under the running server (ext4 on a loop device, errors=remount-ro, forced into
// read-only by an ext4 error), and a truncated database at start. Mounting needs root; without it the
// full-disk case falls back to a fault simulated at the store boundary and says so in its name.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../src/store/errors.js';
import type { Store } from '../src/store/store.js';
import { runCli } from './helpers/cli.js';
import { api, createJob, finish, startTestServer, tempDir, type TestServer } from './helpers/server.js';
import { fillDisk } from './helpers/disk.js';

const servers = new Set<TestServer>();
const mounts: string[] = [];
const dirs: string[] = [];
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m], { stdio: 'ignore' });
    } catch {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function dir(): string {
  const d = tempDir('buildlog-storage-');
  dirs.push(d);
  return d;
}

function tryExec(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A 2 MB tmpfs, or null where mounting is not allowed. */
function smallTmpfs(): string | null {
  const mountpoint = dir();
  if (!tryExec('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mountpoint])) return null;
  mounts.push(mountpoint);
  return mountpoint;
}
const tmpfs = smallTmpfs();

async function start(dataDir: string): Promise<TestServer> {
  const server = await startTestServer({ dataDir, rateLimitPerResource: 1_000_000 });
  servers.add(server);
  return server;
}

async function stop(server: TestServer): Promise<void> {
  servers.delete(server);
  await server.close();
}

function append(server: TestServer, id: string, data: Buffer, offset: number): Promise<Response> {
  return api(server, server.token)(`/v2/logs/${id}/chunks`, {
    method: 'POST',
    body: new Uint8Array(data),
    headers: { 'content-type': 'application/octet-stream', 'x-log-offset': String(offset) },
  });
}

async function readLog(server: TestServer, id: string): Promise<Buffer> {
  const res = await fetch(`${server.url}/v2/logs/${id}?raw=1`);
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

/** A 503 as the clients expect it: the Apify envelope, JSON, and when to retry. */
async function assertUnavailable(res: Response, reason: RegExp): Promise<string> {
  const text = await res.text();
  assert.equal(res.status, 503, text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  assert.match(res.headers.get('retry-after') ?? '', /^\d+$/);
  const body = JSON.parse(text) as { error: { type: string; message: string } };
  assert.equal(body.error.type, 'service-unavailable');
  assert.match(body.error.message, reason);
  assert.doesNotMatch(text, /\n\s+at /, 'no stack trace');
  return body.error.message;
}

/** A live follower of a log, collecting what it receives until its response ends. */
function follow(server: TestServer, id: string) {
  const state = { bytes: Buffer.alloc(0), ended: false, error: null as unknown };
  const done = (async () => {
    const res = await fetch(`${server.url}/v2/logs/${id}?stream=1&raw=1`);
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done: finished } = await reader.read();
      if (finished) break;
      state.bytes = Buffer.concat([state.bytes, value]);
    }
    state.ended = true;
  })().catch((err) => (state.error = err));
  return { state, done };
}

const line = (k: number, size = 16 * 1024) => Buffer.alloc(size, `chunk ${String(k).padStart(4, '0')} of a log that fills the disk\n`);

describe('storage faults', () => {
  test(
    tmpfs
      ? 'a full disk (2 MB tmpfs): appends 503 service-unavailable, reads work, and the next append after freeing space succeeds without a restart'
      : 'a full disk (SIMULATED at the store boundary: mounting is not allowed here): appends 503, reads work, recovery without restart',
    { timeout: 60_000 },
    async (t) => {
      const dataDir = tmpfs ? join(tmpfs, 'data') : join(dir(), 'data');
      const server = await start(dataDir);
      const id = await createJob(server);
      const chunks: Buffer[] = [];
      let offset = 0;
      for (let k = 0; k < 3; k++) {
        chunks.push(line(k, 1000));
        assert.equal((await append(server, id, chunks[k]!, offset)).status, 200);
        offset += chunks[k]!.length;
      }
      const follower = follow(server, id);

      // Fill the disk.
      const filler = join(tmpfs ?? dataDir, 'filler');
      let full = false;
      const original = server.service.store;
      if (tmpfs) {
        fillDisk(filler);
      } else {
        full = true;
        const fault = () => Promise.reject(new StoreUnavailableError('The log store is unavailable: the disk is full.'));
        (server.service as unknown as { store: Store }).store = new Proxy(original, {
          get(target, key) {
            if (full && (key === 'append' || key === 'createJob' || key === 'updateJobStatus')) return fault;
            const value = Reflect.get(target, key) as unknown;
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      }

      // Appends go on until the store notices (the WAL may still have room for a few); each is 200 or 503, never 500.
      let refused: Response | null = null;
      for (let k = chunks.length; k < 300 && !refused; k++) {
        const chunk = line(k);
        const res = await append(server, id, chunk, offset);
        if (res.status === 200) {
          await res.arrayBuffer();
          chunks.push(chunk);
          offset += chunk.length;
        } else {
          assert.equal(res.status, 503, await res.clone().text());
          refused = res;
        }
      }
      assert.ok(refused, 'the full disk was noticed');
      const message = await assertUnavailable(refused, /unavailable: (the disk is full|the database cannot be written)/);
      t.diagnostic(`refused after ${chunks.length} acknowledged chunks: ${message}`);

      // Still full: writes keep being refused cleanly, reads work and show exactly what was acknowledged.
      const pending = line(chunks.length);
      await assertUnavailable(await append(server, id, pending, offset), /unavailable/);
      assert.ok((await readLog(server, id)).equals(Buffer.concat(chunks)), 'earlier data intact and readable');
      const job = await api(server)(`/v2/actor-builds/${id}`);
      assert.equal(job.status, 200);
      assert.equal(((await job.json()) as { data: { status: string } }).data.status, 'RUNNING');

      // Space is back: the refused chunk goes in at the same offset, without a restart.
      if (tmpfs) unlinkSync(filler);
      else full = false;
      const retried = await append(server, id, pending, offset);
      assert.equal(retried.status, 200, await retried.clone().text());
      assert.equal(((await retried.json()) as { data: { duplicate: boolean } }).data.duplicate, false);
      chunks.push(pending);
      offset += pending.length;
      for (let k = 0; k < 3; k++) {
        const chunk = line(chunks.length, 1000);
        assert.equal((await append(server, id, chunk, offset)).status, 200);
        chunks.push(chunk);
        offset += chunk.length;
      }
      assert.equal((await finish(server, id)).status, 200);
      await follower.done;
      assert.equal(follower.state.error, null);
      assert.ok(follower.state.bytes.equals(Buffer.concat(chunks)), 'the live follower got exactly the log, across the fault');
      assert.ok((await readLog(server, id)).equals(Buffer.concat(chunks)), 'the log is exact');

      await stop(server);
      const db = new Database(join(dataDir, 'buildlog.db'), { readonly: true });
      try {
        assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', 'no corruption');
      } finally {
        db.close();
      }
    },
  );

  // `mount -o remount,ro` of a tmpfs is refused (EBUSY) while the database is open for writing, so a data
  // dir cannot be made read-only under a running server that way. What does happen in production is an
  // ext4 error on a filesystem mounted errors=remount-ro: the kernel turns it read-only at once, open
  // files or not. That state only ends with an unmount and fsck, so recovery here means a restart.
  const loopTools = ['mkfs.ext4', 'e2fsck', 'losetup'].every((tool) => tryExec('sh', ['-c', `command -v ${tool}`]));
  test(
    'a data dir that turns read-only under the server (ext4 errors=remount-ro on a loop device): writes 503, reads work, data intact after fsck and restart',
    { timeout: 60_000, skip: !tmpfs || !loopTools || !existsSync('/dev/loop-control') ? 'needs root, loop devices and e2fsprogs' : false },
    async (t) => {
      const base = dir();
      const image = join(base, 'fs.img');
      const mountpoint = join(base, 'mnt');
      mkdirSync(mountpoint);
      writeFileSync(image, '');
      truncateSync(image, 32 * 1024 * 1024);
      execFileSync('mkfs.ext4', ['-q', '-F', image]);
      const mount = () => execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, mountpoint]);
      mount();
      mounts.push(mountpoint);
      const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', mountpoint], { encoding: 'utf8' }).trim();
      const dataDir = join(mountpoint, 'data');

      let server = await start(dataDir);
      const id = await createJob(server);
      const chunks: Buffer[] = [];
      let offset = 0;
      for (let k = 0; k < 5; k++) {
        chunks.push(line(k, 5000));
        assert.equal((await append(server, id, chunks[k]!, offset)).status, 200);
        offset += chunks[k]!.length;
      }

      writeFileSync(`/sys/fs/ext4/${device.replace('/dev/', '')}/trigger_fs_error`, 'reliability test\n');
      const options = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mountpoint) ?? '';
      assert.match(options.split(' ')[3] ?? '', /^ro\b|emergency_ro/, `the filesystem is read-only now: ${options}`);

      const message = await assertUnavailable(await append(server, id, line(99, 5000), offset), /unavailable: the database cannot be written/);
      t.diagnostic(message);
      await assertUnavailable(await append(server, id, Buffer.alloc(0), offset), /unavailable/);
      await assertUnavailable(await api(server, server.token)('/v2/actor-builds', { method: 'POST', json: {} }), /unavailable/);
      await assertUnavailable(await finish(server, id), /unavailable/);
      assert.ok((await readLog(server, id)).equals(Buffer.concat(chunks)), 'reads still work and show what was acknowledged');
      const job = await api(server)(`/v2/actor-builds/${id}`);
      assert.equal(((await job.json()) as { data: { status: string } }).data.status, 'RUNNING');

      // The server still shuts down; then the administrator's part: unmount, fsck, mount again.
      await stop(server);
      execFileSync('umount', [mountpoint]);
      mounts.splice(mounts.indexOf(mountpoint), 1);
      try {
        execFileSync('e2fsck', ['-f', '-y', image], { stdio: 'ignore' });
      } catch (err) {
        // 1: errors were corrected.
        assert.equal((err as { status?: number }).status, 1);
      }
      mount();
      mounts.push(mountpoint);

      server = await start(dataDir);
      assert.ok((await readLog(server, id)).equals(Buffer.concat(chunks)), 'every acknowledged byte is there after the restart');
      const more = line(100, 5000);
      assert.equal((await append(server, id, more, offset)).status, 200);
      assert.equal((await finish(server, id)).status, 200);
      assert.ok((await readLog(server, id)).equals(Buffer.concat([...chunks, more])));
      await stop(server);
    },
  );

  test('a truncated buildlog.db is refused at start with a clear message', { timeout: 60_000 }, async () => {
    const dataDir = dir();
    const server = await start(dataDir);
    const id = await createJob(server);
    for (let k = 0; k < 40; k++) assert.equal((await append(server, id, line(k, 64 * 1024), k * 64 * 1024)).status, 200);
    await stop(server);
    const file = join(dataDir, 'buildlog.db');
    assert.ok(!existsSync(`${file}-wal`) || statSync(`${file}-wal`).size === 0, 'a clean shutdown leaves everything in the main file');
    truncateSync(file, Math.floor(statSync(file).size / 2));
    const refused = await runCli(['serve', '--port', '0', '--data', dataDir]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /buildlog\.db is not a usable SQLite database \(database disk image is malformed\)/);
    assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
  });
});
