/**
 * `stream=1` without a token is answered in front of Fastify (src/api/fast-path.ts), opened by the
 * follower's own first read. The same request with `?token=` goes through Fastify's route: the two must
 * not be told apart on the wire, and whatever the fast path declines (unknown job, wrong kind, finished
 * job, a store fault) must get the route's answer.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type IncomingHttpHeaders } from 'node:http';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { assertEnvelope } from './helpers/envelope.js';
import { rawRequest } from './helpers/http.js';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

interface Followed {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  ended: Promise<void>;
}

/** Opens a follow and resolves once its head arrived; `body` grows until the response ends. */
function follow(server: TestServer, path: string): Promise<Followed> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, agent: false }, (res) => {
      const out: Followed = { status: res.statusCode!, headers: res.headers, body: Buffer.alloc(0), ended: new Promise((r) => res.on('end', r)) };
      res.on('data', (c: Buffer) => (out.body = Buffer.concat([out.body, c])));
      res.on('error', reject);
      resolve(out);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The head without what differs between any two responses (the time). */
function head(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const { date: _date, ...rest } = headers;
  return rest;
}

describe('stream=1 without a token (the fast path)', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ retentionChars: 100 });
  });
  after(() => server.stop());

  for (const query of ['stream=1', 'stream=1&raw=1']) {
    test(`${query}: the same head and bytes as the route, from the stored bytes to the end of the job`, async () => {
      const id = await createJob(server);
      assert.equal((await append(server, id, 'x'.repeat(120) + '\n\x1b[1mbold\x1b[0m\n')).status, 200);
      const fast = await follow(server, `/v2/actor-builds/${id}/log?${query}`);
      const routed = await follow(server, `/v2/actor-builds/${id}/log?${query}&token=${server.token}`);
      assert.equal(fast.status, 200);
      assert.deepEqual(head(fast.headers), head(routed.headers));
      assert.equal(fast.headers['x-log-offset'], '34', 'the log keeps its last 100 characters');
      await waitFor(() => fast.body.length > 0 && fast.body.length === routed.body.length, 5000, 'the stored bytes');
      assert.equal((await append(server, id, 'more \x1b[31mred\x1b[0m\n')).status, 200);
      await waitFor(() => fast.body.toString().includes('red'), 5000, 'the live append');
      assert.equal((await finish(server, id)).status, 200);
      await Promise.all([fast.ended, routed.ended]);
      assert.deepEqual(fast.body, routed.body);
      const text = fast.body.toString();
      if (query.includes('raw')) {
        assert.ok(text.startsWith('x'.repeat(86) + '\n\x1b[1mbold'), 'raw: the retained bytes verbatim, no notice');
      } else {
        assert.match(text, /^\[buildlog\] 34 bytes at the start of this log were dropped: it keeps the last 100 characters\.\n/);
        assert.ok(text.endsWith('x'.repeat(86) + '\nbold\nmore red\n'), 'stripped, after the notice');
      }
    });
  }

  test('an unknown job, a build asked for as a run: the route\'s 404, the same on both paths', async () => {
    const id = await createJob(server);
    for (const path of [`/v2/actor-runs/${id}/log?stream=1`, `/v2/actor-builds/${newId()}/log?stream=1`, `/v2/logs/${newId()}?stream=1`]) {
      const fast = await rawRequest(server, 'GET', path);
      const routed = await rawRequest(server, 'GET', `${path}&token=${server.token}`);
      assertEnvelope(fast, 404, 'record-not-found');
      assert.deepEqual(fast.body, routed.body);
    }
  });

  test('a job that finished: the whole log at once, as from the route', async () => {
    const id = await createJob(server, 'run');
    await append(server, id, 'all of it\n');
    await finish(server, id, 'SUCCEEDED', 'run');
    const fast = await rawRequest(server, 'GET', `/v2/actor-runs/${id}/log?stream=1`);
    const routed = await rawRequest(server, 'GET', `/v2/actor-runs/${id}/log?stream=1&token=${server.token}`);
    assert.equal(fast.status, 200);
    assert.equal(fast.body.toString(), 'all of it\n');
    assert.deepEqual(head(fast.headers), head(routed.headers));
  });
});

describe('stream=1 without a token when the store fails its first read (PostgreSQL)', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  const db = new pg.Client({ connectionString: DATABASE_URL });
  let server: TestServer;
  before(async () => {
    await db.connect();
    server = await startTestServer({ databaseUrl: DATABASE_URL, databaseSchema: schema });
  });
  after(async () => {
    await server.stop();
    await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await db.end();
  });

  test('the route answers (an error in the envelope), the server stays up, and follows work once the store is back', async () => {
    const id = await createJob(server);
    await append(server, id, 'line\n');
    await db.query(`ALTER TABLE ${schema}.jobs RENAME TO jobs_away`);
    try {
      const res = await rawRequest(server, 'GET', `/v2/actor-builds/${id}/log?stream=1`);
      assert.ok(res.status >= 500, `a server-side error, not ${res.status}`);
      assertEnvelope(res, res.status, String((JSON.parse(res.body.toString()) as { error: { type: string } }).error.type));
    } finally {
      await db.query(`ALTER TABLE ${schema}.jobs_away RENAME TO jobs`);
    }
    const again = await follow(server, `/v2/actor-builds/${id}/log?stream=1`);
    assert.equal(again.status, 200);
    await waitFor(() => again.body.toString() === 'line\n', 5000, 'the stored line');
    await finish(server, id);
    await again.ended;
  });
});
