// `buildlog migrate`: an embedded installation copied into the machine's PostgreSQL, then served from
// there; what clients, Range readers and producers see must not change.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { ApifyClient } from 'apify-client';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { runCli } from './helpers/cli.js';
import { append, api, createJob, finish, startTestServer, tempDir, TOKEN, type TestServer } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RETENTION = 3_000;

/** What a reader sees of a job: its object, its raw log from the first retained byte, and its text (with the truncation notice). */
async function snapshot(server: TestServer, id: string, token = server.token) {
  const call = api(server, token);
  const job = ((await (await call(`/v2/actor-runs/${id}`)).json()) as { data: Record<string, unknown> }).data;
  const log = await call(`/v2/logs/${id}?raw=1`, { headers: { range: 'bytes=0-' } });
  const text = await (await call(`/v2/logs/${id}`)).text();
  return { job, status: log.status, range: log.headers.get('content-range'), bytes: Buffer.from(await log.arrayBuffer()), text };
}

describe('buildlog migrate', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const schemas = [schema];
  const dirs: string[] = [];
  const servers: TestServer[] = [];
  const dir = () => {
    const d = tempDir();
    dirs.push(d);
    return d;
  };
  const migrate = (dataDir: string, ...more: string[]) =>
    runCli(['migrate', '--data', dataDir, '--database-url', DATABASE_URL, '--database-schema', schema, '--retention-chars', String(RETENTION), ...more], {}, 60_000);

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    for (const s of schemas) await client.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await client.end();
  });

  test('users, jobs and logs arrive whole: tokens, lists, Range reads, search and producers go on as before', { timeout: 120_000 }, async () => {
    const dataDir = dir();
    const source = await startTestServer({ dataDir, retentionChars: RETENTION });
    const alice = await runCli(['users', 'add', 'alice', '--data', dataDir]);
    assert.equal(alice.code, 0, alice.stderr);
    const aliceToken = alice.stdout.trim().split('\n').pop()!;

    const done = await createJob(source, 'build', { actId: 'my-app' });
    await append(source, done, '\x1b[32mcompiled\x1b[0m 14 modules\n');
    assert.equal((await finish(source, done, 'SUCCEEDED')).status, 200);
    const trimmed = await createJob(source, 'run', { actId: 'my-app' });
    for (let i = 0; i < 40; i++) await append(source, trimmed, `step ${i} ${'ü'.repeat(100)}\n`);
    assert.equal((await finish(source, trimmed, 'FAILED', 'run')).status, 200);
    const running = await createJob(source, 'build', { actId: 'other' });
    const runningLog = Buffer.from('still going\n');
    await append(source, running, runningLog, 0);
    const aliceServer = { ...source, token: aliceToken };
    const hers = await createJob(aliceServer, 'run', { actId: 'alice-app' });
    await append(aliceServer, hers, 'fetch failed: ECONNRESET\n');
    await finish(aliceServer, hers, 'FAILED', 'run');

    const ids = [done, trimmed, running, hers];
    const before = new Map<string, Awaited<ReturnType<typeof snapshot>>>();
    for (const id of ids) before.set(id, await snapshot(source, id, id === hers ? aliceToken : TOKEN));
    assert.match(before.get(trimmed)!.range!, /^bytes [1-9]\d*-/, 'the run lost its first bytes to retention');
    await source.stop();

    const first = await migrate(dataDir);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, /Copied 2 users and 4 jobs/);
    assert.match(first.stderr, /1 of the jobs had not finished/);

    const rerun = await migrate(dataDir);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stderr, /Copied 0 users and 0 jobs \(0\.0 MiB of logs\).*; 6 users and jobs were there already/);

    const target = await startTestServer({ dataDir: dir(), databaseUrl: DATABASE_URL, databaseSchema: schema, retentionChars: RETENTION });
    servers.push(target);
    for (const id of ids) {
      assert.deepEqual(await snapshot(target, id, id === hers ? aliceToken : TOKEN), before.get(id), `job ${id} reads as before`);
    }
    const client = new ApifyClient({ baseUrl: target.url, token: TOKEN, maxRetries: 0 });
    assert.deepEqual((await client.builds().list()).items.map((j) => j.id), [done, running]);
    assert.equal(await client.run(trimmed).log().get(), before.get(trimmed)!.text);
    assert.match(before.get(trimmed)!.text, /^\[buildlog\] 2594 bytes at the start of this log were dropped/);
    const hersSeen = new ApifyClient({ baseUrl: target.url, token: aliceToken, maxRetries: 0 });
    assert.deepEqual((await hersSeen.runs().list()).items.map((j) => j.id), [hers], 'alice\'s token is hers there too');
    const search = await (await api(target, aliceToken)('/v2/logs/search?q=econnreset')).json() as { data: { items: { id: string }[] } };
    assert.deepEqual(search.data.items.map((i) => i.id), [hers], 'the copied logs are searchable');

    // The producer of the unfinished build goes on where it was, with its offsets.
    const retry = await append(target, running, runningLog, 0);
    assert.deepEqual(((await retry.json()) as { data: unknown }).data, { id: running, offset: 0, length: runningLog.length, duplicate: true }, 'a retry of what the old server had is known');
    const next = await append(target, running, 'done\n', runningLog.length);
    assert.deepEqual(((await next.json()) as { data: unknown }).data, { id: running, offset: runningLog.length, length: runningLog.length + 5, duplicate: false });
    const whole = Buffer.from('still going\ndone\n');
    const verified = await api(target, TOKEN)(`/v2/actor-builds/${running}`, { method: 'PUT', json: { status: 'SUCCEEDED', logLength: whole.length, logCrc32: crc32(whole) } });
    assert.equal(verified.status, 200, 'a verified finish counts the bytes sent to the old server too');
    assert.equal(await client.build(running).log().get(), 'still going\ndone\n');

    // The target has moved on: copying again would overwrite it, so it is refused.
    const again = await migrate(dataDir);
    assert.equal(again.code, 1, 'the build finished in the target since: its log differs from the source\'s');
    assert.match(again.stderr, new RegExp(`job ${running} exists in the target with another log`));
  });

  test('a run interrupted after creating a job finishes it; a user named alike but not the same stops the copy', { timeout: 60_000 }, async () => {
    const other = `${schema}_b`;
    schemas.push(other);
    const dataDir = dir();
    const source = await startTestServer({ dataDir });
    const a = await createJob(source, 'build', { actId: 'x' });
    await append(source, a, 'first\n');
    const b = await createJob(source, 'run', { actId: 'x' });
    await append(source, b, 'second\n');
    await finish(source, b, 'SUCCEEDED', 'run');
    await source.stop();

    // What an interrupted run leaves: the user and the first job exist in the target, the job's log not yet.
    const from = new SqliteStore({ dataDir, retentionChars: RETENTION, background: false });
    const to = await PostgresStore.open({ url: DATABASE_URL, schema: other, retentionChars: RETENTION });
    const [admin] = await from.listUsers();
    await to.createUser(admin!);
    await to.createJob((await from.getJob(a))!);
    await from.close();
    await to.close();

    const finished = await migrate(dataDir, '--database-schema', other);
    assert.equal(finished.code, 0, finished.stderr);
    assert.match(finished.stderr, /Copied 0 users and 2 jobs .*; 1 users and jobs were there already/);
    const target = await startTestServer({ dataDir: dir(), databaseUrl: DATABASE_URL, databaseSchema: other });
    servers.push(target);
    const client = new ApifyClient({ baseUrl: target.url, token: TOKEN, maxRetries: 0 });
    assert.equal(await client.build(a).log().get(), 'first\n');
    assert.equal(await client.run(b).log().get(), 'second\n');

    // Another installation whose admin has the same name: nothing of it is merged into this one.
    const otherData = dir();
    const second = await startTestServer({ dataDir: otherData, token: 'another-installation-token-012345' });
    await createJob(second, 'build');
    await second.stop();
    const clash = await migrate(otherData, '--database-schema', other);
    assert.equal(clash.code, 1);
    assert.match(clash.stderr, /user "admin" exists in the target already, with another id; nothing of it was copied/);
    assert.equal((await client.builds().list()).total, 1, 'the target is as it was');
  });

  test('usage: without --database-url or without a data dir, exit 2 and say what is missing', async () => {
    const noUrl = await runCli(['migrate', '--data', dir()]);
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /--database-url \(or BUILDLOG_DATABASE_URL\) names the PostgreSQL to copy into/);
    const empty = dir();
    const noData = await migrate(empty);
    assert.equal(noData.code, 2);
    assert.match(noData.stderr, /there is no .*buildlog\.db to copy/);
  });
});
