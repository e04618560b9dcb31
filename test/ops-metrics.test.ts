// GET /metrics under a scripted load: every metric moves by what the load did, and the text parses with
// the Prometheus project's own parser.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { scrape, histogramCount, value } from './helpers/metrics.js';
import { append, api, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

async function start(overrides = {}): Promise<TestServer> {
  const s = await startTestServer({ rateLimitPerResource: 1_000_000, ...overrides });
  servers.push(s);
  return s;
}

/** A live follower (`stream=1`) reading until the job ends. */
async function follow(server: TestServer, id: string): Promise<{ body: Promise<string> }> {
  const res = await fetch(`${server.url}/v2/logs/${id}?stream=1&raw=1`);
  assert.equal(res.status, 200);
  return { body: res.text() };
}

describe('metrics', () => {
  test('every metric moves as the scripted load says; labels hold route patterns, never ids or tokens', async () => {
    const server = await start();
    const before = await scrape(server);
    const build = await createJob(server, 'build');
    const run = await createJob(server, 'run');
    const followers = [await follow(server, build), await follow(server, build)];
    await waitFor(async () => value(await scrape(server), 'buildlog_live_followers') === 2, 5000, 'two live followers');

    const N = 25;
    let bytes = 0;
    for (let i = 0; i < N; i++) {
      const line = `step ${i}: ${'x'.repeat(i * 13)}\n`;
      bytes += Buffer.byteLength(line);
      assert.equal((await append(server, build, line)).status, 200);
    }
    // A retry of stored bytes and an empty heartbeat are answered 200 but append nothing.
    assert.equal((await append(server, build, 'step 0: \n', 0)).status, 200);
    assert.equal((await append(server, run, '')).status, 200);
    assert.equal((await finish(server, build)).status, 200);
    const logs = await Promise.all(followers.map((f) => f.body));
    for (const log of logs) assert.equal(Buffer.byteLength(log), bytes);
    // A finished log twice: the second answer may come from the fast path in front of Fastify; both count.
    for (let i = 0; i < 2; i++) assert.equal(await (await fetch(`${server.url}/v2/actor-builds/${build}/log`)).text().then((t) => Buffer.byteLength(t)), bytes);
    assert.equal((await fetch(`${server.url}/v2/logs/nosuchjob0000000`)).status, 404);
    assert.equal((await fetch(`${server.url}/no/such/path/${build}`)).status, 404);

    const m = await scrape(server);
    const delta = (name: string, labels: Record<string, string> = {}) => value(m, name, labels) - value(before, name, labels);
    assert.equal(delta('buildlog_appends_total'), N);
    assert.equal(delta('buildlog_appended_bytes_total'), bytes);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/logs/:id/chunks', method: 'POST', status: '200' }), N + 2);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/actor-builds', method: 'POST', status: '201' }), 1);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/actor-runs', method: 'POST', status: '201' }), 1);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/actor-builds/:id', method: 'PUT', status: '200' }), 1);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/logs/:id', method: 'GET', status: '200' }), 2);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/logs/:id', method: 'GET', status: '404' }), 1);
    assert.equal(delta('buildlog_http_requests_total', { route: '/v2/actor-builds/:id/log', method: 'GET', status: '200' }), 2);
    assert.equal(delta('buildlog_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' }), 1);
    assert.equal(histogramCount(m, 'buildlog_http_request_duration_seconds', { route: '/v2/logs/:id/chunks' }), N + 2);
    assert.equal(histogramCount(m, 'buildlog_http_request_duration_seconds', { route: '/v2/logs/:id' }), 3);
    // One commit per group of appends: these were sent one after another, so one each (the retry and the
    // heartbeat commit too).
    const commits = histogramCount(m, 'buildlog_store_commit_duration_seconds') - histogramCount(before, 'buildlog_store_commit_duration_seconds');
    assert.ok(commits >= N && commits <= N + 2, `${commits} commits for ${N} appends`);
    // Each append reached each of the two followers live.
    assert.equal(histogramCount(m, 'buildlog_fanout_delay_seconds'), 2 * N);
    assert.equal(value(m, 'buildlog_live_followers'), 0, 'the followers ended with the job');
    assert.equal(value(m, 'buildlog_jobs', { kind: 'build', status: 'SUCCEEDED' }), 1);
    assert.equal(value(m, 'buildlog_jobs', { kind: 'build', status: 'RUNNING' }), 0);
    assert.equal(value(m, 'buildlog_jobs', { kind: 'run', status: 'RUNNING' }), 1);
    assert.equal(value(m, 'buildlog_expired_jobs_total'), 0);
    // Default process metrics.
    assert.ok(value(m, 'process_cpu_user_seconds_total') > 0);
    assert.ok(value(m, 'nodejs_heap_size_used_bytes') > 0);

    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const secret of [build, run, server.token]) assert.ok(!text.includes(secret), 'no id or token in the metrics');
    for (const [, family] of m) {
      for (const s of family.samples) {
        if (s.labels.route) assert.match(s.labels.route, /^(\/[\w-]*|\/:id|unmatched)+$/, `route label ${s.labels.route}`);
      }
    }
  });

  test('--metrics-token: /metrics needs it as a Bearer token (401 envelope otherwise); a user token does not do', async () => {
    const server = await start({ metricsToken: 'scrape-secret-123' });
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${server.token}` }, { authorization: 'scrape-secret-123' }]) {
      const res = await fetch(`${server.url}/metrics`, { headers });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const body = (await res.json()) as { error: { type: string; message: string } };
      assert.equal(body.error.type, 'token-not-valid');
      assert.ok(!body.error.message.includes('scrape-secret-123'));
    }
    const m = await scrape(server, 'scrape-secret-123');
    assert.ok(m.has('buildlog_appends'));
    // Health and readiness need no token, and ignore one they cannot know.
    assert.equal((await fetch(`${server.url}/healthz`, { headers: { authorization: 'Bearer scrape-secret-123' } })).status, 200);
  });

  test('health, readiness and metrics are not rate limited and need no token', async () => {
    const server = await start({ rateLimitPerResource: 1, rateLimitPerClient: 3 });
    for (let i = 0; i < 10; i++) {
      for (const path of ['/healthz', '/readyz', '/metrics']) {
        const res = await fetch(`${server.url}${path}`, { headers: { authorization: 'Bearer not-a-user-token' } });
        assert.equal(res.status, 200, `${path} #${i}`);
        assert.equal(res.headers.get('x-ratelimit-limit'), null);
        await res.arrayBuffer();
      }
    }
    // The API itself is still limited for that client.
    let limited = false;
    for (let i = 0; i < 5 && !limited; i++) limited = (await api(server)('/v2/actor-builds/nosuchjob0000000')).status === 429;
    assert.ok(limited);
  });
});
