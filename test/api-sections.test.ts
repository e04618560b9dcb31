// GET …/log/sections: the sections of a job's log over HTTP, as they are while it runs and once it ended.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { GITHUB_LOG, GITLAB_LOG } from './fixtures/section-logs.js';
import { append, api, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

interface WireSection {
  name: string;
  title: string;
  depth: number;
  start: number;
  end: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  durationMillis: number | null;
  collapsed: boolean;
}

describe('log sections API', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  before(async () => {
    server = await startTestServer();
    call = api(server);
  });
  after(() => server.stop());

  const sections = async (path: string) => {
    const res = await call(path);
    assert.equal(res.status, 200, await res.clone().text());
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    return ((await res.json()) as { data: { items: WireSection[] } }).data.items;
  };

  test('GitLab output appended in pieces cut mid-marker: the same list on all three paths', async () => {
    const id = await createJob(server);
    const bytes = Buffer.from(GITLAB_LOG);
    // Cuts inside "section_start", inside the \r\e[0K after it, and inside a section_end.
    const cuts = [0, bytes.indexOf('section_st') + 10, bytes.indexOf('\r') + 1, bytes.indexOf('section_end:1732982410') + 5, bytes.length];
    for (let i = 0; i + 1 < cuts.length; i++) await append(server, id, bytes.subarray(cuts[i], cuts[i + 1]), cuts[i]);
    const items = await sections(`/v2/logs/${id}/sections`);
    assert.deepEqual(items.map((s) => [s.name, s.depth, s.collapsed, s.durationMillis]), [
      ['prepare_executor', 0, false, 3000],
      ['step_script', 0, true, 8000],
      ['npm_test', 1, false, 6000],
    ]);
    assert.equal(items[1]!.startedAt, '2024-11-30T16:00:03.000Z');
    assert.ok(bytes.subarray(items[2]!.start, items[2]!.end!).toString().startsWith('section_start:1732982404:npm_test'));
    assert.deepEqual(await sections(`/v2/actor-builds/${id}/log/sections`), items);
    const wrongKind = await call(`/v2/actor-runs/${id}/log/sections`);
    assert.equal(wrongKind.status, 404);
    assert.equal(((await wrongKind.json()) as { error: { type: string } }).error.type, 'record-not-found');
  });

  test('while a job runs, an open group has end null; it closes when its ::endgroup:: arrives', async () => {
    const id = await createJob(server, 'run');
    const lines = GITHUB_LOG.split(/(?<=\n)/);
    await append(server, id, lines.slice(0, 2).join(''), 0);
    let items = await sections(`/v2/actor-runs/${id}/log/sections`);
    assert.deepEqual(items.map((s) => [s.name, s.end]), [['Install dependencies', null]]);
    await append(server, id, lines.slice(2).join(''), Buffer.byteLength(lines.slice(0, 2).join('')));
    await finish(server, id, 'FAILED', 'run');
    items = await sections(`/v2/actor-runs/${id}/log/sections`);
    assert.deepEqual(items.map((s) => [s.name, s.depth, s.end === null, s.durationMillis]), [
      ['Install dependencies', 0, false, 6000],
      ['Post-install scripts', 1, false, 750],
      ['Build', 0, true, null],
    ]);
  });

  test('?section=<name> returns that section alone: stripped by default, byte-exact with raw=1, open ones to the end', async () => {
    const id = await createJob(server);
    const bytes = Buffer.from(GITLAB_LOG);
    await append(server, id, bytes, 0);
    const items = await sections(`/v2/logs/${id}/sections`);
    const npmTest = items.find((s) => s.name === 'npm_test')!;
    const raw = await call(`/v2/actor-builds/${id}/log?section=npm_test&raw=1`);
    assert.equal(raw.status, 200);
    assert.equal(raw.headers.get('x-log-offset'), String(npmTest.start));
    assert.ok(Buffer.from(await raw.arrayBuffer()).equals(bytes.subarray(npmTest.start, npmTest.end!)));
    assert.equal(await (await call(`/v2/logs/${id}?section=npm_test`)).text(), 'Running tests\n  ✓ parses the config (3 ms)\n');
    const outer = await (await call(`/v2/logs/${id}?section=step_script`)).text();
    assert.ok(outer.startsWith('Executing "step_script" stage') && outer.includes('Running tests') && !outer.includes('section_'), outer);

    // A group still open while the job runs: to the end of the log so far.
    const run = await createJob(server, 'run');
    await append(server, run, GITHUB_LOG, 0);
    assert.equal(await (await call(`/v2/actor-runs/${run}/log?section=Build`)).text(), GITHUB_LOG.slice(GITHUB_LOG.indexOf('2026-11-30T10:00:06.100Z')).replace('::group::', ''));

    const missing = await call(`/v2/logs/${id}?section=nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as { error: { message: string } }).error.message, /no section named "nope"/);
    assert.equal((await call(`/v2/logs/${id}?section=`)).status, 400);
  });

  test('a log without sections has none; an unknown id is 404; other methods are 405', async () => {
    const id = await createJob(server);
    await append(server, id, 'plain output\nno sections here\n', 0);
    assert.deepEqual(await sections(`/v2/logs/${id}/sections`), []);
    assert.equal((await call('/v2/logs/Nope0000000000000/sections')).status, 404);
    const post = await call(`/v2/logs/${id}/sections`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'OPTIONS,GET');
  });
});
