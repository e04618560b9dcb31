// Log structure on the wire: the truncation notice and logTruncatedBytes, and section markers in the stripped view.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { strippedView } from '../src/text/stripped-view.js';
import { GITHUB_LOG, GITLAB_LOG } from './fixtures/section-logs.js';
import { append, api, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

describe('truncation notice', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  before(async () => {
    server = await startTestServer({ retentionChars: 20 });
    call = api(server);
  });
  after(() => server.stop());

  const text = async (id: string, init: RequestInit = {}, query = '') => (await call(`/v2/logs/${id}${query}`, init)).text();
  const job = async (id: string) => ((await (await call(`/v2/actor-builds/${id}`)).json()) as { data: { logTruncatedBytes: number; status: string } }).data;

  test('a stripped whole-log read starts with it, running and finished; raw and Range reads do not; logTruncatedBytes says how many', async () => {
    const id = await createJob(server);
    const all = 'line 01\nline 02\nline 03\nline 04\nline 05\nline 06\nlast\n';
    await append(server, id, all, 0);
    const dropped = all.length - 20;
    const NOTICE = `[buildlog] ${dropped} bytes at the start of this log were dropped: it keeps the last 20 characters.\n`;
    const kept = all.slice(dropped);
    for (const phase of ['running', 'finished']) {
      assert.equal(await text(id), NOTICE + kept, `${phase}: stripped`);
      assert.equal(await text(id, {}, '?raw=1'), kept, `${phase}: raw`);
      assert.equal(await text(id, { headers: { range: `bytes=${dropped}-` } }), kept, `${phase}: Range`);
      assert.equal((await job(id)).logTruncatedBytes, dropped, phase);
      if (phase === 'running') assert.equal((await finish(server, id)).status, 200);
    }
    assert.equal((await job(id)).status, 'SUCCEEDED', 'truncation never changes the status');
    // Compressed, from the cache: the same text.
    const gz = await call(`/v2/logs/${id}`, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(gz.headers.get('content-encoding'), 'gzip');
    assert.equal(await gz.text(), NOTICE + kept);
  });

  test('nothing dropped: no notice, logTruncatedBytes 0', async () => {
    const id = await createJob(server);
    await append(server, id, 'short\n', 0);
    assert.equal(await text(id), 'short\n');
    assert.equal((await job(id)).logTruncatedBytes, 0);
  });
});

describe('sections in the stripped view', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  before(async () => {
    server = await startTestServer();
    call = api(server);
  });
  after(() => server.stop());

  test('header text instead of marker syntax, raw=1 byte-exact, for a finished log and a live follower', async () => {
    for (const log of [GITLAB_LOG, GITHUB_LOG]) {
      const bytes = Buffer.from(log);
      const expected = strippedView(bytes).toString();
      assert.ok(!expected.includes('section_start') && !expected.includes('::group::') && !expected.includes('::endgroup::'));
      const id = await createJob(server);
      // A follower from the start, while the log arrives in pieces cut inside markers.
      const follower = await call(`/v2/logs/${id}?stream=1`);
      const reading = follower.text();
      const cuts = [0, bytes.indexOf('section_') + 3, bytes.indexOf('::group') + 4, bytes.indexOf('\r') + 1, bytes.length]
        .filter((c) => c >= 0)
        .sort((a, b) => a - b);
      for (let i = 0; i + 1 < cuts.length; i++) {
        if (cuts[i] === cuts[i + 1]) continue;
        await append(server, id, bytes.subarray(cuts[i], cuts[i + 1]), cuts[i]);
      }
      await finish(server, id);
      assert.equal(await reading, expected, 'the live follower');
      assert.equal(await (await call(`/v2/logs/${id}`)).text(), expected, 'the finished log');
      const raw = Buffer.from(await (await call(`/v2/logs/${id}?raw=1`)).arrayBuffer());
      assert.ok(raw.equals(bytes), 'raw=1 is the bytes as sent');
    }
  });
});
