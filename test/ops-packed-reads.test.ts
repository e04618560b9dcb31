// A finished log is stored packed (gzip members): every way of reading it answers as the same log does
// while it runs (raw and stripped views, ranges, sections, the truncation notice, search), through the
// finished-log cache and without it (after a restart), and its verified finish stays verified.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { crc32 } from 'node:zlib';
import Database from 'better-sqlite3';
import { GITLAB_LOG } from './fixtures/section-logs.js';
import { append, api, createJob, startTestServer, tempDir, waitFor, type TestServer } from './helpers/server.js';

const dirs: string[] = [];
const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Build-like lines, different from each other, about `bytes` long; `marker` appears on one line only. */
function buildOutput(bytes: number, marker: string): Buffer {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const line = i === 10_000
      ? `\x1b[31merror\x1b[0m ${marker} in src/module_${i}.ts\n`
      : `\x1b[2m2026-11-30T10:${String(i % 60).padStart(2, '0')}:00Z\x1b[0m compiling src/module_${i}.ts (${(i * 37) % 1000} ms)\n`;
    lines.push(line);
    size += Buffer.byteLength(line);
  }
  return Buffer.from(lines.join(''));
}

/** Whether the store holds this job's log packed, read from the database file itself. */
function isPacked(dataDir: string, id: string): boolean {
  const db = new Database(join(dataDir, 'buildlog.db'), { readonly: true });
  try {
    return (db.prepare('SELECT packed FROM jobs WHERE id = ?').get(id) as { packed: number }).packed === 1;
  } finally {
    db.close();
  }
}

describe('packed finished logs', () => {
  test('read the same as the running log in every view, from the cache and after a restart; verified finish and search keep working', { timeout: 120_000 }, async () => {
    const dataDir = join(tempDir('buildlog-packed-'), 'data');
    dirs.push(dataDir);
    // Retention drops the head of these logs: the stripped views start with the truncation notice.
    const settings = { dataDir, retentionChars: 600_000, rateLimitPerResource: 1_000_000 };
    let server = await startTestServer(settings);
    servers.push(server);
    const call = () => api(server, server.token);
    // Several 256 KiB gzip members, then sections at the end.
    const log = Buffer.concat([buildOutput(900_000, 'ENOPACKEDMARKER'), Buffer.from(GITLAB_LOG)]);
    const live = await createJob(server);
    const done = await createJob(server);
    for (const id of [live, done]) {
      for (let at = 0; at < log.length; at += 64 * 1024) {
        assert.equal((await append(server, id, log.subarray(at, at + 64 * 1024), at)).status, 200);
      }
    }
    // A verified finish (issue 13's logLength and logCrc32), then the store packs the log.
    const finished = await call()(`/v2/actor-builds/${done}`, { method: 'PUT', json: { status: 'SUCCEEDED', logLength: log.length, logCrc32: crc32(log) } });
    assert.equal(finished.status, 200, await finished.clone().text());
    await server.store.packFinishedLogs();
    await waitFor(() => isPacked(dataDir, done), 20_000, 'the finished log to be packed');
    assert.equal(isPacked(dataDir, live), false, 'a running log stays plain');
    assert.deepEqual(await server.store.logChecksum(done), { length: log.length, crc32: crc32(log) });

    const paths = (id: string) => [
      `/v2/logs/${id}`,
      `/v2/logs/${id}?raw=1`,
      `/v2/actor-builds/${id}/log?download=1`,
      `/v2/logs/${id}?section=npm_test`,
      `/v2/logs/${id}?section=step_script&raw=1`,
      `/v2/logs/${id}/sections`,
    ];
    const read = async (path: string, headers: Record<string, string> = {}) => {
      const res = await call()(path, { headers });
      const body = Buffer.from(await res.arrayBuffer());
      assert.ok(res.status === 200 || res.status === 206, `${path}: ${res.status} ${body.toString().slice(0, 200)}`);
      return { status: res.status, body };
    };
    const raw = (await read(`/v2/logs/${done}?raw=1`)).body;
    const compare = async (what: string) => {
      for (const [i, path] of paths(done).entries()) {
        assert.deepEqual(await read(path), await read(paths(live)[i]!), `${what}: ${path}`);
      }
      // Ranges (absolute offsets, within the retained window): one spanning more than a 256 KiB member, so
      // across a boundary, a small one, and suffixes; gzip-accepting clients too.
      const first = log.length - raw.length;
      for (const range of [`bytes=${first + 1000}-${first + 300_000}`, `bytes=${first + 262_000}-${first + 262_300}`, `bytes=${first + 500_000}-`, 'bytes=-1000']) {
        const headers = { range };
        assert.deepEqual(await read(`/v2/logs/${done}?raw=1`, headers), await read(`/v2/logs/${live}?raw=1`, headers), `${what}: ${range}`);
      }
      const gzipped = await read(`/v2/logs/${done}?raw=1`, { 'accept-encoding': 'gzip' });
      assert.ok(gzipped.body.equals(log.subarray(log.length - gzipped.body.length)), `${what}: gzip`);
    };


    assert.ok(raw.length < log.length && raw.equals(log.subarray(log.length - raw.length)), 'the retained tail, byte for byte');
    assert.match((await read(`/v2/logs/${done}`)).body.toString(), /^\[buildlog\] \d+ bytes at the start of this log were dropped/);
    const job = (await (await call()(`/v2/actor-builds/${done}`)).json()) as { data: { logTruncatedBytes: number } };
    assert.equal(job.data.logTruncatedBytes, log.length - raw.length);
    await compare('first read');
    await compare('from the finished-log cache');

    // A restart: nothing cached, a search index rebuilt from the stored (packed) rows.
    await server.close();
    servers.splice(servers.indexOf(server), 1);
    rmSync(join(dataDir, 'search.db'), { force: true });
    server = await startTestServer(settings);
    servers.push(server);
    await compare('after a restart');
    await waitFor(async () => {
      const res = await call()('/v2/logs/search?q=ENOPACKEDMARKER');
      const body = (await res.json()) as { data: { total: number } };
      return body.data.total === 2;
    }, 30_000, 'the rebuilt search index to find the marker in both logs');

    // Deleting a packed log: gone from the store and from the cache.
    assert.equal((await call()(`/v2/actor-builds/${done}`, { method: 'DELETE' })).status, 204);
    assert.equal((await fetch(`${server.url}/v2/logs/${done}?raw=1`)).status, 404);
  });
});
