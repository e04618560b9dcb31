// apify-client's list, actor, last-run and delete calls against buildlog, unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApifyClient } from 'apify-client';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

describe('apify-client: lists, actors, last run, delete', () => {
  let server: TestServer;
  let client: ApifyClient;
  const builds: string[] = [];
  const runs: string[] = [];

  before(async () => {
    server = await startTestServer();
    client = new ApifyClient({ baseUrl: server.url, token: server.token, maxRetries: 1, minDelayBetweenRetriesMillis: 50 });
    for (let i = 1; i <= 3; i++) {
      builds.push(await createJob(server, 'build', { actId: i === 1 ? 'admin~lister' : 'lister', buildNumber: `0.${i < 3 ? 1 : 2}.${i}` }));
      await finish(server, builds.at(-1)!, 'SUCCEEDED');
    }
    await createJob(server, 'build', { actId: 'other', buildNumber: '1.0.1' });
    for (let i = 0; i < 4; i++) {
      const id = await createJob(server, 'run', { actId: 'lister' });
      await append(server, id, `run ${i} says hello\n`);
      await finish(server, id, i % 2 ? 'FAILED' : 'SUCCEEDED', 'run');
      runs.push(id);
    }
  });
  after(() => server.stop());

  test('builds().list() and runs().list({ status }) list the token user\'s jobs, ascending by start', async () => {
    const all = await client.builds().list();
    assert.equal(all.total, 4);
    assert.equal(all.count, 4);
    assert.equal(all.offset, 0);
    assert.equal(all.limit, 1000);
    assert.equal(all.desc, false);
    assert.deepEqual(all.items.slice(0, 3).map((b) => b.id), builds);
    assert.ok(all.items[0]!.startedAt instanceof Date);
    assert.equal(Reflect.get(all.items[0]!, 'buildNumber'), '0.1.1', 'list items carry the build number (apify builds ls reads it)');
    const failed = await client.runs().list({ status: 'FAILED' });
    assert.deepEqual(failed.items.map((r) => r.id), [runs[1], runs[3]]);
    const desc = await client.runs().list({ desc: true, limit: 2, offset: 1 });
    assert.deepEqual(desc.items.map((r) => r.id), [runs[2], runs[1]]);
    assert.equal(desc.total, 4);
    // The client's async iteration pages with offset/limit until total.
    const seen: string[] = [];
    for await (const r of client.runs().list({ limit: 3 })) seen.push(r.id);
    assert.deepEqual(seen, runs.slice(0, 3));
  });

  test('actor(x).builds().list() and actor(x).runs().list() by name and by username/name', async () => {
    const byName = await client.actor('lister').builds().list();
    assert.deepEqual(byName.items.map((b) => b.id), builds);
    const byUser = await client.actor('admin/lister').runs().list({ desc: true });
    assert.deepEqual(byUser.items.map((r) => r.id), [...runs].reverse());
    assert.equal((await client.actor('other').runs().list()).total, 0);
  });

  test('actor(x).get() carries id, name, username, versions and taggedBuilds', async () => {
    const actor = await client.actor('admin/lister').get();
    assert.ok(actor);
    assert.equal(actor.id, 'lister');
    assert.equal(actor.name, 'lister');
    assert.equal(actor.username, 'admin');
    assert.deepEqual(actor.versions.map((v) => v.versionNumber), ['0.1', '0.2']);
    assert.equal(actor.taggedBuilds?.latest?.buildId, builds[2]);
    assert.equal(await client.actor('nobody/lister').get(), undefined);
  });

  test('lastRun({ status }).get() and .log().get() read the newest run of that status', async () => {
    assert.equal((await client.actor('lister').lastRun().get())?.id, runs[3]);
    const ok = client.actor('admin/lister').lastRun({ status: 'SUCCEEDED' });
    assert.equal((await ok.get())?.id, runs[2]);
    assert.equal(await ok.log().get(), 'run 2 says hello\n');
    assert.equal(await client.actor('lister').lastRun({ status: 'ABORTED' }).get(), undefined);
    assert.equal(await client.actor('other').lastRun().log().get(), undefined);
  });

  test('build(id).delete() and run(id).delete() remove the job and its log', async () => {
    const build = await createJob(server, 'build', { actId: 'doomed', buildNumber: '0.0.1' });
    await append(server, build, 'bye\n');
    await client.build(build).delete();
    assert.equal(await client.build(build).get(), undefined);
    assert.equal(await client.log(build).get(), undefined);
    const run = await createJob(server, 'run', { actId: 'doomed' });
    await client.run(run).delete();
    assert.equal(await client.run(run).get(), undefined);
    const res = await api(server, server.token)(`/v2/logs/${run}`);
    assert.equal(res.status, 404);
  });
});
