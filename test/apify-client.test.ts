// The product's promise: the official `apify-client` package works against buildlog unchanged.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApifyClient } from 'apify-client';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

describe('apify-client against buildlog', () => {
  let server: TestServer;
  let client: ApifyClient;

  before(async () => {
    server = await startTestServer();
    client = new ApifyClient({ baseUrl: server.url, token: server.token, maxRetries: 2, minDelayBetweenRetriesMillis: 50 });
  });
  after(() => server.stop());

  test('build(id).log().get() returns the log with ANSI codes removed', async () => {
    const id = await createJob(server);
    await append(server, id, '2026-01-01T00:00:00.000Z \x1b[32mStarting\x1b[0m build\n');
    await append(server, id, '2026-01-01T00:00:01.000Z done\n');
    assert.equal(
      await client.build(id).log().get(),
      '2026-01-01T00:00:00.000Z Starting build\n2026-01-01T00:00:01.000Z done\n',
    );
  });

  test('log(id).get({ raw: true }) is byte-exact', async () => {
    const id = await createJob(server);
    const bytes = 'a\x1b[1;31mb\x1b]0;title\x07c\r\n\tžluťoučký 🚀\n';
    await append(server, id, bytes);
    assert.equal(await client.log(id).get({ raw: true }), bytes);
    assert.equal(await client.log(id).get(), 'abc\n\tžluťoučký 🚀\n');
  });

  test('build(id).log().stream() receives appends live and ends when the build finishes', async () => {
    const id = await createJob(server);
    await append(server, id, 'first\n');
    const stream = await client.build(id).log().stream();
    assert.ok(stream, 'stream() returned a stream');
    let received = '';
    let ended = false;
    stream.on('data', (chunk: Buffer) => (received += chunk.toString('utf8')));
    stream.on('end', () => (ended = true));
    await waitFor(() => received === 'first\n', 5000, 'stored part');
    await append(server, id, 'second\n');
    await waitFor(() => received === 'first\nsecond\n', 5000, 'live append');
    assert.equal(ended, false, 'the stream stays open while the build runs');
    await append(server, id, 'last\n');
    await finish(server, id, 'SUCCEEDED');
    await waitFor(() => ended, 5000, 'end of stream');
    assert.equal(received, 'first\nsecond\nlast\n');
  });

  test('run(id).log() reads and streams a run log', async () => {
    const id = await createJob(server, 'run');
    await append(server, id, 'run output\n');
    assert.equal(await client.run(id).log().get(), 'run output\n');
    await finish(server, id, 'FAILED', 'run');
    const stream = await client.run(id).log().stream({ raw: true });
    assert.ok(stream);
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    assert.equal(text, 'run output\n');
  });

  test('build(id).get() returns the job object with the fields the CLI reads', async () => {
    const id = await createJob(server, 'build', { actId: 'my-actor', buildNumber: '0.1.3' });
    const build = await client.build(id).get();
    assert.ok(build);
    assert.equal(build.id, id);
    assert.equal(build.actId, 'my-actor');
    assert.equal(build.status, 'RUNNING');
    assert.equal(build.buildNumber, '0.1.3');
    assert.ok(build.startedAt instanceof Date, 'startedAt is parsed into a Date by the client');
    assert.equal(build.finishedAt, null);
    assert.equal(build.meta.origin, 'API');
    assert.equal(typeof build.stats?.durationMillis, 'number');
    const actor = await client.actor('my-actor').get();
    assert.equal(actor?.name, 'my-actor');
  });

  test('waitForFinish() returns once the build finishes', async () => {
    const id = await createJob(server);
    setTimeout(() => void finish(server, id, 'SUCCEEDED'), 300);
    const build = await client.build(id).waitForFinish({ waitSecs: 30 });
    assert.equal(build.status, 'SUCCEEDED');
    assert.ok(build.finishedAt instanceof Date);
    const run = await createJob(server, 'run');
    const waited = await client.run(run).waitForFinish({ waitSecs: 1 });
    assert.equal(waited.status, 'RUNNING', 'a job that does not finish in time is returned as it is');
  });

  test('abort() aborts a running build and leaves a finished one unchanged', async () => {
    const id = await createJob(server);
    const aborted = await client.build(id).abort();
    assert.equal(aborted.status, 'ABORTED');
    assert.ok(aborted.finishedAt instanceof Date);
    const again = await client.build(id).abort();
    assert.equal(again.status, 'ABORTED');
    const run = await createJob(server, 'run');
    assert.equal((await client.run(run).abort({ gracefully: true })).status, 'ABORTING');
  });

  test("user('me').get() identifies the token's user", async () => {
    const me = await client.user('me').get();
    assert.ok(me);
    assert.equal(me.username, 'admin');
    assert.equal(typeof me.id, 'string');
    assert.equal(typeof me.proxy?.password, 'string');
  });

  test('unknown ids give undefined, as on Apify', async () => {
    assert.equal(await client.build('AAAAAAAAAAAAAAAAA').get(), undefined);
    assert.equal(await client.run('AAAAAAAAAAAAAAAAA').get(), undefined);
    assert.equal(await client.log('AAAAAAAAAAAAAAAAA').get(), undefined);
    assert.equal(await client.build('AAAAAAAAAAAAAAAAA').log().get(), undefined);
    assert.equal(await client.actor('no-such-actor').get(), undefined);
  });

  test('a build id is not found on the runs path', async () => {
    const id = await createJob(server, 'build');
    assert.equal(await client.run(id).get(), undefined);
  });
});
