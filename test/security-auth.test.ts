// Who may read and write what: the auth matrix walked for every endpoint in both modes, tokens kept out of
// the request log, and only token hashes at rest.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { createUser, hashToken } from '../src/auth/tokens.js';
import type { UserRecord } from '../src/store/store.js';
import { BIN, cleanEnv } from './helpers/cli.js';
import { rawRequest as raw, type RawResponse } from './helpers/http.js';
import { append, createJob, startTestServer, tempDir, type TestServer } from './helpers/server.js';



function json(res: RawResponse): any {
  assert.match(String(res.headers['content-type']), /^application\/json(;|$)/, `JSON body: ${res.body.toString()}`);
  return JSON.parse(res.body.toString('utf8'));
}

const NO_TOKEN = 'Authentication token was not provided.';
const BAD_TOKEN = 'Authentication token is not valid.';
const ACTOR = 'matrix-actor';

// ---------------------------------------------------------------------------------------------------------
// The matrix. Columns: how the request authenticates. Rows: every endpoint, with the expected outcome per
// column in the default mode (reads open by id) and with --private (reads need the owner's token).
//   ok       2xx, and the effect happened (or the right data came back)
//   missing  401 token-not-valid "Authentication token was not provided."
//   invalid  401 token-not-valid "Authentication token is not valid."
//   denied   403 permission-denied, and nothing changed
// ---------------------------------------------------------------------------------------------------------

const COLUMNS = ['no token', 'unknown token (header)', 'unknown token (?token=)', "owner's token (header)", "owner's token (?token=)", "another user's token"] as const;
type Column = (typeof COLUMNS)[number];
type Outcome = 'ok' | 'missing' | 'invalid' | 'denied';
type Mode = 'default' | 'private';

//                                   no token  unknown/hdr unknown/qs  owner/hdr owner/qs other
const READ = { default: 'ok       invalid     invalid     ok        ok       ok', private: 'missing  invalid     invalid     ok        ok       denied' };
const WRITE = { default: 'missing  invalid     invalid     ok        ok       denied', private: 'missing  invalid     invalid     ok        ok       denied' };
const OWN = { default: 'missing  invalid     invalid     ok        ok       ok', private: 'missing  invalid     invalid     ok        ok       ok' };

interface Fixture {
  build: string;
  run: string;
  owner: UserRecord;
}

interface Endpoint {
  name: string;
  method: 'GET' | 'POST' | 'PUT';
  path: (fx: Fixture) => string;
  body?: string;
  contentType?: string;
  expect: { default: string; private: string };
  /** On 'ok': checks the response and the effect. `user` is the token's user. */
  ok: (res: RawResponse, fx: Fixture, user: UserRecord, server: TestServer) => Promise<void> | void;
  /** The effect a write would have had; checked to be absent on 'missing', 'invalid' and 'denied'. */
  unchanged?: (fx: Fixture, server: TestServer) => Promise<void>;
}

const logBody = (res: RawResponse) => {
  assert.equal(res.status, 200);
  assert.match(String(res.headers['content-type']), /^text\/plain/);
  assert.equal(res.body.toString(), 'secret line\n');
};
const jobBody = (id: () => string) => (res: RawResponse) => {
  assert.equal(res.status, 200);
  assert.equal(json(res).data.id, id());
};
const actorBody = (res: RawResponse, fx: Fixture) => {
  assert.equal(res.status, 200);
  const data = json(res).data;
  assert.equal(data.name, ACTOR);
  assert.equal(data.username, fx.owner.username);
};
const statusIs = async (server: TestServer, id: string, status: string) =>
  assert.equal((await server.store.getJob(id))?.status, status, `job ${id} status`);
const logLength = async (server: TestServer, id: string) => (await server.store.logInfo(id))!.length;

const ENDPOINTS: Endpoint[] = [
  { name: 'GET /v2/actor-builds/:id/log', method: 'GET', path: (fx) => `/v2/actor-builds/${fx.build}/log`, expect: READ, ok: logBody },
  { name: 'GET /v2/actor-runs/:id/log', method: 'GET', path: (fx) => `/v2/actor-runs/${fx.run}/log`, expect: READ, ok: logBody },
  { name: 'GET /v2/logs/:id', method: 'GET', path: (fx) => `/v2/logs/${fx.build}`, expect: READ, ok: logBody },
  {
    name: 'GET /v2/logs/:id/sections',
    method: 'GET',
    path: (fx) => `/v2/logs/${fx.build}/sections`,
    expect: READ,
    ok: (res) => {
      assert.equal(res.status, 200);
      assert.ok(Array.isArray(json(res).data.items));
    },
  },
  { name: 'GET /v2/actor-builds/:id', method: 'GET', path: (fx) => `/v2/actor-builds/${fx.build}`, expect: READ, ok: (res, fx) => jobBody(() => fx.build)(res) },
  { name: 'GET /v2/actor-runs/:id', method: 'GET', path: (fx) => `/v2/actor-runs/${fx.run}`, expect: READ, ok: (res, fx) => jobBody(() => fx.run)(res) },
  { name: 'GET /v2/actors/:actorId', method: 'GET', path: () => `/v2/actors/${ACTOR}`, expect: READ, ok: actorBody },
  { name: 'GET /v2/acts/:actorId (user~name)', method: 'GET', path: (fx) => `/v2/acts/${fx.owner.username}~${ACTOR}`, expect: READ, ok: actorBody },
  {
    name: 'POST /v2/actor-builds/:id/abort',
    method: 'POST',
    path: (fx) => `/v2/actor-builds/${fx.build}/abort`,
    expect: WRITE,
    ok: async (res, fx, _user, server) => {
      assert.equal(res.status, 200);
      assert.equal(json(res).data.status, 'ABORTED');
      await statusIs(server, fx.build, 'ABORTED');
    },
    unchanged: (fx, server) => statusIs(server, fx.build, 'RUNNING'),
  },
  {
    name: 'POST /v2/actor-runs/:id/abort',
    method: 'POST',
    path: (fx) => `/v2/actor-runs/${fx.run}/abort`,
    expect: WRITE,
    ok: async (res, fx, _user, server) => {
      assert.equal(res.status, 200);
      await statusIs(server, fx.run, 'ABORTED');
    },
    unchanged: (fx, server) => statusIs(server, fx.run, 'RUNNING'),
  },
  {
    name: 'GET /v2/users/me',
    method: 'GET',
    path: () => '/v2/users/me',
    expect: OWN,
    ok: (res, _fx, user) => {
      assert.equal(res.status, 200);
      const data = json(res).data;
      assert.equal(data.id, user.id);
      assert.equal(data.username, user.username);
    },
  },
  ...(['build', 'run'] as const).map(
    (kind): Endpoint => ({
      name: `POST /v2/actor-${kind}s`,
      method: 'POST',
      path: () => `/v2/actor-${kind}s`,
      body: JSON.stringify({ actId: 'created-by-matrix' }),
      contentType: 'application/json',
      expect: OWN,
      ok: async (res, _fx, user, server) => {
        assert.equal(res.status, 201);
        const data = json(res).data;
        assert.equal(data.userId, user.id, 'the job belongs to the token’s user');
        assert.equal((await server.store.getJob(data.id))?.userId, user.id);
      },
    }),
  ),
  {
    name: 'POST /v2/logs/:id/chunks',
    method: 'POST',
    path: (fx) => `/v2/logs/${fx.build}/chunks`,
    body: 'appended\n',
    contentType: 'text/plain',
    expect: WRITE,
    ok: async (res, fx, _user, server) => {
      assert.equal(res.status, 200);
      assert.equal(await logLength(server, fx.build), 'secret line\nappended\n'.length);
    },
    unchanged: async (fx, server) => assert.equal(await logLength(server, fx.build), 'secret line\n'.length),
  },
  ...(['build', 'run'] as const).map(
    (kind): Endpoint => ({
      name: `PUT /v2/actor-${kind}s/:id`,
      method: 'PUT',
      path: (fx) => `/v2/actor-${kind}s/${fx[kind]}`,
      body: JSON.stringify({ status: 'SUCCEEDED' }),
      contentType: 'application/json',
      expect: WRITE,
      ok: async (res, fx, _user, server) => {
        assert.equal(res.status, 200);
        await statusIs(server, fx[kind], 'SUCCEEDED');
      },
      unchanged: (fx, server) => statusIs(server, fx[kind], 'RUNNING'),
    }),
  ),
];

function outcomes(row: string): Record<Column, Outcome> {
  const cells = row.trim().split(/\s+/) as Outcome[];
  assert.equal(cells.length, COLUMNS.length, `a full row: ${row}`);
  return Object.fromEntries(COLUMNS.map((c, i) => [c, cells[i]!])) as Record<Column, Outcome>;
}

describe('auth matrix: every endpoint × every credential × both modes', () => {
  const servers: Partial<Record<Mode, { server: TestServer; owner: UserRecord; other: UserRecord; otherToken: string }>> = {};

  before(async () => {
    for (const mode of ['default', 'private'] as const) {
      const server = await startTestServer({ privateReads: mode === 'private' });
      const owner = (await server.store.userByTokenHash(hashToken(server.token)))!;
      const other = await createUser(server.store, 'other-user');
      servers[mode] = { server, owner, other: other.user, otherToken: other.token };
    }
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.server.stop();
  });

  /** A fresh build and run of the owner (actor ACTOR), each with one log line, both RUNNING. */
  async function fixture(server: TestServer, owner: UserRecord): Promise<Fixture> {
    const build = await createJob(server, 'build', { actId: ACTOR });
    const run = await createJob(server, 'run', { actId: ACTOR });
    for (const id of [build, run]) assert.equal((await append(server, id, 'secret line\n')).status, 200);
    return { build, run, owner };
  }

  for (const mode of ['default', 'private'] as const) {
    for (const endpoint of ENDPOINTS) {
      const expected = outcomes(endpoint.expect[mode]);
      for (const column of COLUMNS) {
        const outcome = expected[column];
        test(`${mode} · ${endpoint.name} · ${column} → ${outcome}`, async () => {
          const { server, owner, other, otherToken } = servers[mode]!;
          const fx = await fixture(server, owner);
          const headers: Record<string, string> = endpoint.contentType ? { 'content-type': endpoint.contentType } : {};
          let path = endpoint.path(fx);
          const query = (token: string) => (path += `${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
          let user: UserRecord | null = null;
          switch (column) {
            case 'no token':
              break;
            case 'unknown token (header)':
              headers.authorization = `Bearer unknown-${randomBytes(8).toString('hex')}`;
              break;
            case 'unknown token (?token=)':
              query(`unknown-${randomBytes(8).toString('hex')}`);
              break;
            case "owner's token (header)":
              headers.authorization = `Bearer ${server.token}`;
              user = owner;
              break;
            case "owner's token (?token=)":
              query(server.token);
              user = owner;
              break;
            case "another user's token":
              headers.authorization = `Bearer ${otherToken}`;
              user = other;
              break;
          }
          const usageBefore = await Promise.all([owner, other].map((u) => server.store.userUsage(u.id)));
          const res = await raw(server.url, endpoint.method, path, { headers, body: endpoint.body });
          const cell = `${mode} · ${endpoint.method} ${path} · ${column}: ${res.status} ${res.body.toString().slice(0, 200)}`;
          if (outcome === 'ok') {
            assert.ok(res.status >= 200 && res.status < 300, cell);
            await endpoint.ok(res, fx, user!, server);
            return;
          }
          const [status, type, message] = {
            missing: [401, 'token-not-valid', NO_TOKEN],
            invalid: [401, 'token-not-valid', BAD_TOKEN],
            denied: [403, 'permission-denied', undefined],
          }[outcome];
          assert.equal(res.status, status, cell);
          const body = json(res);
          assert.deepEqual(Object.keys(body), ['error'], cell);
          assert.equal(body.error.type, type, cell);
          if (message) assert.equal(body.error.message, message, cell);
          // A refused request leaks nothing: no log bytes, no job object, no user data.
          assert.doesNotMatch(res.body.toString(), /secret line|"data"/, cell);
          await endpoint.unchanged?.(fx, server);
          const usageAfter = await Promise.all([owner, other].map((u) => server.store.userUsage(u.id)));
          assert.deepEqual(
            usageAfter.map((u) => u.jobs),
            usageBefore.map((u) => u.jobs),
            'a refused request creates no job',
          );
        });
      }
    }
  }

  test('the matrix names every route the server serves', () => {
    const { server } = servers.default!;
    const pairs = ENDPOINTS.map((e) => {
      const url = e.name.split(' ')[1]!;
      assert.ok(server.app.hasRoute({ method: e.method, url }), `${e.method} ${url} is a route`);
      return `${e.method} ${url}`;
    });
    assert.equal(new Set(pairs).size, 16, 'sixteen method × path pairs: every endpoint of the API');
  });
});

describe('tokens in the request log', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** `buildlog serve` as a child process with its stdout (the pino request log) captured. */
  async function serveWithLog(level: string, token: string) {
    const dir = tempDir('buildlog-sec-');
    dirs.push(dir);
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--log-level', level, '--data', dir], {
      env: { ...cleanEnv(), BUILDLOG_TOKEN: token },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`server did not start: ${stderr}`));
      }, 20_000);
      child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${stderr}`)));
      child.stderr!.on('data', (c) => {
        stderr += c;
        const m = /listening on (http:\/\/\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    return {
      url,
      /** Stops the server (SIGTERM, a clean exit) and returns everything it wrote. */
      async stop() {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const code = await exited;
        clearTimeout(timer);
        assert.equal(code, 0, `clean exit; stderr: ${stderr}`);
        return { stdout, stderr };
      },
    };
  }

  /** Sends raw bytes and resolves with whatever comes back once the server closes (bounded). */
  function rawSocket(url: string, bytes: string): Promise<string> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve) => {
      const socket = connect(Number(port), hostname);
      let got = '';
      const timer = setTimeout(() => socket.destroy(), 5000);
      socket.on('data', (d) => (got += d));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(got);
      });
      socket.end(bytes);
    });
  }

  for (const level of ['info', 'trace']) {
    test(`no token reaches the log at --log-level ${level}; ?token= values are [REDACTED]`, async () => {
      const token = `leaktest_${randomBytes(16).toString('hex')}`;
      const unknown = `unknowntoken_${randomBytes(16).toString('hex')}`;
      const server = await serveWithLog(level, token);
      const bearer = { authorization: `Bearer ${token}` };
      const created = await raw(server.url, 'POST', '/v2/actor-builds', { headers: { ...bearer, 'content-type': 'application/json' }, body: '{}' });
      assert.equal(created.status, 201);
      const id = json(created).data.id as string;
      const statuses: [string, number][] = [];
      const send = async (method: string, path: string, headers: Record<string, string> = {}, body?: string) => {
        const res = await raw(server.url, method, path, { headers, body });
        statuses.push([`${method} ${path.replace(token, 'T').replace(unknown, 'U')}`, res.status]);
        return res.status;
      };
      assert.equal(await send('GET', `/v2/users/me?token=${token}`), 200);
      assert.equal(await send('GET', `/v2/logs/${id}?raw=1&token=${token}`), 200);
      assert.equal(await send('POST', `/v2/logs/${id}/chunks?token=${token}`, { 'content-type': 'text/plain' }, 'line\n'), 200);
      assert.equal(await send('GET', '/v2/users/me', bearer), 200);
      assert.equal(await send('GET', `/v2/users/me?token=${unknown}`), 401);
      assert.equal(await send('GET', '/v2/users/me', { authorization: `Bearer ${unknown}` }), 401);
      assert.equal(await send('GET', '/v2/users/me', { authorization: `Basic ${token}` }), 401);
      assert.equal(await send('GET', `/v2/nothing-here?token=${token}`), 404);
      assert.equal(await send('GET', `/v2/logs/${id}?stream=maybe&token=${token}`), 400);
      // Spellings the router also reads as the token: a %-escaped key, and a query that starts at `#`.
      assert.equal(await send('GET', `/v2/users/me?%74oken=${token}`), 200);
      assert.equal(await send('GET', `/v2/users/me#token=${token}`), 200);
      assert.equal(await send('GET', `/v2/users/me?TOKEN=${token}&tok%65n=${token}`), 200);
      // Requests Node itself refuses (bad header syntax, an over-long header) carry the token too.
      const refused = await rawSocket(server.url, `GET /v2/users/me?token=${token} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nBad Header Line\r\n\r\n`);
      assert.match(refused, /^HTTP\/1\.1 400 /);
      const huge = await rawSocket(server.url, `GET /v2/users/me?token=${token} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nX-Pad: ${'p'.repeat(20_000)}\r\n\r\n`);
      assert.match(huge, /^HTTP\/1\.1 431 /);

      const { stdout, stderr } = await server.stop();
      const lines = stdout.split('\n').filter(Boolean);
      assert.ok(lines.length >= statuses.length, `the request log has lines (${lines.length})`);
      for (const secret of [token, unknown, token.slice('leaktest_'.length, 'leaktest_'.length + 16), unknown.slice(13, 29)]) {
        assert.ok(!stdout.includes(secret), `${secret} is not in the log:\n${lines.filter((l) => l.includes(secret)).join('\n')}`);
        assert.ok(!stderr.includes(secret), `${secret} is not on stderr`);
      }
      assert.ok(!stdout.includes(hashToken(token)), 'not even the token hash is logged');
      const urls = lines.map((l) => JSON.parse(l) as { req?: { url: string; headers?: unknown } }).filter((l) => l.req);
      assert.ok(urls.length >= statuses.length, 'every request is logged');
      assert.ok(urls.every((l) => l.req!.headers === undefined), 'headers are never logged');
      const logged = urls.map((l) => l.req!.url);
      assert.ok(logged.includes('/v2/users/me?token=[REDACTED]'), logged.join('\n'));
      assert.ok(logged.includes(`/v2/logs/${id}?raw=1&token=[REDACTED]`));
      assert.ok(logged.includes('/v2/users/me?%74oken=[REDACTED]'));
      assert.ok(logged.includes('/v2/users/me#token=[REDACTED]'));
      assert.ok(logged.includes('/v2/users/me?TOKEN=[REDACTED]&tok%65n=[REDACTED]'));
    });
  }
});

describe('tokens at rest', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.stop());

  test('the users table holds SHA-256 hashes only, and no clear token is anywhere in the database files', async () => {
    const made = [await createUser(server.store, 'alice'), await createUser(server.store, 'bob', 'chosen-token-of-bob-0123456789')];
    const tokens = [server.token, ...made.map((m) => m.token)];
    // The tokens work (so they are stored somehow)...
    for (const token of tokens) {
      const me = await raw(server.url, 'GET', '/v2/users/me', { headers: { authorization: `Bearer ${token}` } });
      assert.equal(me.status, 200);
    }
    // ...but only as hashes.
    const db = new Database(join(server.dataDir, 'buildlog.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db.prepare('SELECT * FROM users').all() as Record<string, unknown>[];
      assert.equal(rows.length, 3);
      const hashes = rows.map((r) => r.token_hash);
      assert.deepEqual([...hashes].sort(), tokens.map(hashToken).sort());
      for (const row of rows) {
        assert.match(String(row.token_hash), /^[0-9a-f]{64}$/);
        for (const [column, value] of Object.entries(row)) {
          for (const token of tokens) assert.ok(!String(value).includes(token), `users.${column} holds no clear token`);
        }
      }
    } finally {
      db.close();
    }
    for (const file of ['buildlog.db', 'buildlog.db-wal', 'buildlog.db-shm']) {
      const path = join(server.dataDir, file);
      if (!existsSync(path)) continue;
      const bytes = readFileSync(path);
      for (const token of tokens) assert.equal(bytes.indexOf(token), -1, `${file} holds no clear token`);
    }
  });
});
