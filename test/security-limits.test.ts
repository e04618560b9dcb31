// How much anyone may ask of the server: rate limits (and apify-client's retries through them), the cap on open
// streams and quotas (test/security-bodies.test.ts: what a request may carry, and how slowly).
import assert from 'node:assert/strict';
import { Agent, request, type ClientRequest, type IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { ApifyClient } from 'apify-client';
import { createUser } from '../src/auth/tokens.js';
import { assertEnvelope } from './helpers/envelope.js';
import { rawRequest, type RawOptions, type RawResponse } from './helpers/http.js';
import { api, append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const agent = new Agent({ keepAlive: true, maxSockets: 32 });
after(() => agent.destroy());
/** Requests of this file share one keep-alive agent (bursts would otherwise exhaust ports). */
const raw = (server: { url: string }, method: string, path: string, options: RawOptions = {}): Promise<RawResponse> =>
  rawRequest(server, method, path, { agent, ...options });

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `n` requests at once. */
const burst = (server: TestServer, path: string, n: number, headers: Record<string, string> = {}) =>
  Promise.all(Array.from({ length: n }, () => raw(server, 'GET', path, { headers })));

describe('per-resource rate limit (Apify default: 60 requests/s per job)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  /** A finished build with a known log. */
  async function logJob(text: string): Promise<string> {
    const id = await createJob(server);
    assert.equal((await append(server, id, text)).status, 200);
    assert.equal((await finish(server, id)).status, 200);
    return id;
  }

  test('a burst on one log gets 429 rate-limit-exceeded with Retry-After, and X-RateLimit-Limit: 60 on every answer', async () => {
    const id = await logJob('burst me\n');
    let limited: RawResponse | undefined;
    const all: RawResponse[] = [];
    // 60 per second: a burst of 150 at once cannot all fit in one window; a busy machine may need a few rounds.
    for (let round = 0; round < 20 && !limited; round++) {
      const responses = await burst(server, `/v2/logs/${id}`, 150);
      all.push(...responses);
      limited = responses.find((r) => r.status === 429);
    }
    assert.ok(limited, 'a 429 appeared');
    assertEnvelope(limited, 429, 'rate-limit-exceeded', /rate limit/);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After: ${limited.headers['retry-after']}`);
    for (const res of all) {
      assert.ok(res.status === 200 || res.status === 429, `only 200 or 429: ${res.status}`);
      assert.equal(res.headers['x-ratelimit-limit'], '60');
      if (res.status === 200) assert.equal(res.body.toString(), 'burst me\n');
    }
    // The limit is per resource: another job's log is not affected.
    const other = await logJob('other\n');
    assert.equal((await raw(server, 'GET', `/v2/logs/${other}`)).status, 200);
  });

  test('apify-client still gets the log while the burst is on, thanks to its retries', async () => {
    // Its first attempt is refused when the burst has used up the current window; it must retry until one
    // passes. A window may roll over just before that attempt (then no retry was needed), so up to 5 tries.
    let retried = false;
    for (let scenario = 0; scenario < 5 && !retried; scenario++) {
      const text = `log number ${scenario}\n`;
      const id = await logJob(text);
      let attempts = 0;
      const client = new ApifyClient({
        baseUrl: server.url,
        token: server.token,
        minDelayBetweenRetriesMillis: 100,
        requestInterceptors: [
          (config) => {
            attempts++;
            return config;
          },
        ],
      });
      let stop = false;
      let limitedDuringBurst = 0;
      const hammer = (async () => {
        while (!stop) {
          for (const r of await burst(server, `/v2/logs/${id}`, 20)) if (r.status === 429) limitedDuringBurst++;
        }
      })();
      await waitFor(() => limitedDuringBurst > 0, 20_000, 'the burst to hit the limit');
      // The burst goes on for 1.5 s more while the client reads: a burst of limited length is the scenario
      // (the client is refused while it lasts and gets through on a retry after it), so this wait stays.
      const burstEnds = sleep(1500).then(() => (stop = true));
      const log = await client.log(id).get();
      await burstEnds;
      await hammer;
      assert.equal(log, text);
      assert.ok(limitedDuringBurst > 0);
      retried = attempts >= 2;
    }
    assert.ok(retried, 'in at least one scenario the client was refused first and succeeded on a retry');
  });
});

describe('per-client rate limit (per user with a token, per address without)', () => {
  const LIMIT = 30;
  let server: TestServer;
  let alice: { token: string };
  let bob: { token: string };
  before(async () => {
    server = await startTestServer({ rateLimitPerClient: LIMIT, rateLimitPerResource: 10_000 });
    alice = await createUser(server.store, 'alice');
    bob = await createUser(server.store, 'bob');
  });
  after(() => server.stop());

  test('each user has their own budget; anonymous requests share the address budget; unknown tokens count against the address', async () => {
    const me = (token?: string) => raw(server, 'GET', '/v2/users/me', { headers: token ? auth(token) : {} });
    // Alice uses her whole budget.
    for (let i = 0; i < LIMIT; i++) {
      const res = await me(alice.token);
      assert.equal(res.status, 200, `request ${i + 1} of ${LIMIT}`);
      assert.equal(res.headers['x-ratelimit-limit'], String(LIMIT));
    }
    const over = await me(alice.token);
    assertEnvelope(over, 429, 'rate-limit-exceeded');
    const retryAfter = Number(over.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter} within the one-minute window`);
    // The same address with another token, and without one, is not affected: the budget is Alice's.
    assert.equal((await me(bob.token)).status, 200);
    const id = await createJob(server);
    assert.equal((await raw(server, 'GET', `/v2/logs/${id}`)).status, 200);
    // Anonymous requests (and made-up tokens: guessing tokens is throttled too) share the address's budget.
    let anonymous = 1;
    for (; anonymous < LIMIT; anonymous++) {
      const res =
        anonymous % 2 === 0
          ? await raw(server, 'GET', `/v2/logs/${id}`)
          : await raw(server, 'GET', '/v2/users/me', { headers: auth(`made-up-token-${anonymous}`) });
      assert.equal(res.status, anonymous % 2 === 0 ? 200 : 401, `anonymous request ${anonymous + 1}`);
    }
    assertEnvelope(await raw(server, 'GET', `/v2/logs/${id}`), 429, 'rate-limit-exceeded');
    assertEnvelope(await raw(server, 'GET', '/v2/users/me', { headers: auth('yet-another-made-up-token') }), 429, 'rate-limit-exceeded');
    // Bob still has his own budget, Alice is still over hers.
    assert.equal((await me(bob.token)).status, 200);
    assert.equal((await me(alice.token)).status, 429);
  });
});

describe('concurrent streams per client', () => {
  const MAX = 2;
  let server: TestServer;
  let other: { token: string };
  const open: ClientRequest[] = [];
  before(async () => {
    server = await startTestServer({ maxStreamsPerClient: MAX, rateLimitPerResource: 10_000 });
    other = await createUser(server.store, 'other');
  });
  after(async () => {
    for (const req of open) req.destroy();
    await server.stop();
  });

  /** Opens `?stream=1` on a log and resolves at its head: a 200 stays open (kept in `open`), anything else is read whole. */
  function openStream(id: string, token?: string): Promise<{ req: ClientRequest; res: IncomingMessage; error?: RawResponse }> {
    return new Promise((resolve, reject) => {
      const req = request(`${server.url}/v2/logs/${id}?stream=1`, { headers: token ? auth(token) : {} }, (res) => {
        if (res.statusCode === 200) {
          open.push(req);
          res.on('data', () => undefined);
          res.on('error', () => undefined);
          return resolve({ req, res });
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ req, res, error: { status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) } }));
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
  }

  test('the stream after the cap is 429; closing one frees a slot; other clients have their own slots', async () => {
    const id = await createJob(server);
    assert.equal((await append(server, id, 'running\n')).status, 200);
    const first = await openStream(id, server.token);
    const second = await openStream(id, server.token);
    assert.equal(first.error, undefined);
    assert.equal(second.error, undefined);
    const third = await openStream(id, server.token);
    assert.ok(third.error, 'the third stream is refused');
    assertEnvelope(third.error, 429, 'rate-limit-exceeded', new RegExp(`concurrent log streams \\(limit ${MAX} per client\\)`));
    assert.ok(Number(third.error.headers['retry-after']) >= 1);

    // Reads that are not streams are not capped, nor is `stream` on a finished job (it is a plain read).
    assert.equal((await raw(server, 'GET', `/v2/logs/${id}`, { headers: auth(server.token) })).status, 200);
    const done = await createJob(server);
    await finish(server, done);
    assert.equal((await raw(server, 'GET', `/v2/logs/${done}?stream=1`, { headers: auth(server.token) })).status, 200);
    // Other clients: another user, and anonymous readers (counted by address).
    const others = [await openStream(id, other.token), await openStream(id), await openStream(id)];
    assert.deepEqual(others.map((s) => s.error?.status), [undefined, undefined, undefined]);
    assert.equal((await openStream(id)).error?.status, 429, 'the address has its own cap');

    // Closing a stream gives its slot back (once the server has seen the close).
    first.req.destroy();
    let again: Awaited<ReturnType<typeof openStream>> | undefined;
    await waitFor(
      async () => {
        again = await openStream(id, server.token);
        if (again.error) await sleep(50);
        return !again.error;
      },
      10_000,
      'a freed slot',
    );
    assert.equal((await openStream(id, server.token)).error?.status, 429, 'and only that one');

    // Streams end when the job finishes, and their slots are freed.
    const ended = [second, again!].map((s) => new Promise((r) => s.res.on('end', r)));
    await finish(server, id);
    await Promise.all(ended);
    const next = await createJob(server);
    await waitFor(
      async () => {
        const s = await openStream(next, server.token);
        if (s.error) await sleep(50);
        else s.req.destroy();
        return !s.error;
      },
      10_000,
      'slots freed by the finished job',
    );
  });
});

describe('quotas (maxJobsPerUser, maxBytesPerUser)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ maxJobsPerUser: 3, maxBytesPerUser: 100 });
  });
  after(() => server.stop());

  test('the job after maxJobsPerUser is 403 permission-denied with a clear message; other users are not affected', async () => {
    const { token } = await createUser(server.store, 'jobs-quota');
    const create = (kind: string) =>
      raw(server, 'POST', `/v2/actor-${kind}s`, { headers: { ...auth(token), 'content-type': 'application/json' }, body: '{}' });
    for (const kind of ['build', 'run', 'build']) assert.equal((await create(kind)).status, 201);
    for (const kind of ['build', 'run']) {
      assertEnvelope(await create(kind), 403, 'permission-denied', /User "jobs-quota" has reached the limit of 3 jobs\./);
    }
    const other = await createUser(server.store, 'jobs-quota-other');
    const res = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(other.token), 'content-type': 'application/json' }, body: '{}' });
    assert.equal(res.status, 201);
  });

  test('appends past maxBytesPerUser are 403 permission-denied and store nothing', async () => {
    const { token } = await createUser(server.store, 'bytes-quota');
    const jobOf = async () => {
      const res = await raw(server, 'POST', '/v2/actor-builds', { headers: { ...auth(token), 'content-type': 'application/json' }, body: '{}' });
      return JSON.parse(res.body.toString()).data.id as string;
    };
    const [a, b] = [await jobOf(), await jobOf()];
    const put = (id: string, data: Buffer | string, encoding?: string) =>
      raw(server, 'POST', `/v2/logs/${id}/chunks`, {
        headers: { ...auth(token), 'content-type': 'text/plain', ...(encoding ? { 'content-encoding': encoding } : {}) },
        body: data,
      });
    assert.equal((await put(a, 'x'.repeat(60))).status, 200);
    assertEnvelope(await put(b, 'y'.repeat(50)), 403, 'permission-denied', /reached the limit of 100 log bytes/);
    // Compressed bodies count their inflated bytes.
    assertEnvelope(await put(b, gzipSync(Buffer.alloc(41, 'z')), 'gzip'), 403, 'permission-denied', /limit of 100 log bytes/);
    assert.equal((await put(b, 'y'.repeat(40))).status, 200, 'exactly at the quota is fine');
    assertEnvelope(await put(a, 'z'), 403, 'permission-denied');
    assert.equal(await (await api(server)(`/v2/logs/${a}`)).text(), 'x'.repeat(60));
    assert.equal(await (await api(server)(`/v2/logs/${b}`)).text(), 'y'.repeat(40));
  });
});
