// Lists, actor references and delete over plain HTTP: parameters, errors, privacy, live followers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';
import { within } from './helpers/http.js';
import { get } from 'node:http';
import { hashToken } from '../src/auth/tokens.js';
import { newId } from '../src/core/ids.js';

type Json = Record<string, any>;

describe('lists, actors and delete over HTTP', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  const OTHER = 'other-token-0123456789abcdefghij';

  before(async () => {
    server = await startTestServer();
    call = api(server, server.token);
    await server.store.createUser({ id: newId(), username: 'janedoe', tokenHash: hashToken(OTHER), proxyPassword: 'p', createdAt: Date.now() });
  });
  after(() => server.stop());

  const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Json });

  test('the list envelope: total, offset, limit, desc, count, items', async () => {
    const ids = [await createJob(server, 'build', { actId: 'env' }), await createJob(server, 'build', { actId: 'env' })];
    const { status, body } = await json(await call('/v2/acts/env/builds?offset=1&limit=5&desc=true'));
    assert.equal(status, 200);
    assert.deepEqual({ ...body.data, items: body.data.items.map((i: Json) => i.id) }, { total: 2, offset: 1, limit: 5, desc: true, count: 1, items: [ids[0]] });
    const big = await json(await call('/v2/actors/env/builds?limit=5000'));
    assert.equal(big.body.data.limit, 1000, 'limit is capped at 1000');
    assert.equal((await json(await call('/v2/actor-builds?limit=0'))).body.data.limit, 1000, 'limit=0 is the default');
  });

  test('bad parameters are 400 invalid-input naming the parameter', async () => {
    for (const [query, name] of [
      ['offset=-1', 'offset'],
      ['offset=abc', 'offset'],
      ['limit=1.5', 'limit'],
      ['desc=maybe', 'desc'],
      ['status=DONE', 'status'],
      ['status=SUCCEEDED,', 'status'],
    ]) {
      const { status, body } = await json(await call(`/v2/actor-runs?${query}`));
      assert.equal(status, 400, query);
      assert.equal(body.error.type, 'invalid-input');
      assert.match(body.error.message, new RegExp(`"${name}"`), query);
    }
    assert.equal((await call('/v2/actor-runs?status=succeeded,failed')).status, 200, 'statuses are case-insensitive lists');
  });

  test('lists need a token and show only the token user\'s jobs; another user\'s actor is 403', async () => {
    await createJob(server, 'run', { actId: 'private-app' });
    assert.equal((await fetch(`${server.url}/v2/actor-runs`)).status, 401);
    assert.equal((await fetch(`${server.url}/v2/acts/private-app/runs`)).status, 401);
    const theirs = await json(await api(server, OTHER)('/v2/actor-runs'));
    assert.equal(theirs.body.data.total, 0);
    assert.equal((await api(server, OTHER)('/v2/acts/admin~private-app/runs')).status, 403);
    assert.equal((await api(server, OTHER)('/v2/acts/private-app/runs')).status, 404, 'a bare name is the caller\'s own actor');
    assert.equal((await api(server, OTHER)('/v2/acts/admin~private-app/runs/last')).status, 403);
    const unknown = await json(await call('/v2/acts/nobody~x/runs'));
    assert.deepEqual(unknown, { status: 404, body: { error: { type: 'record-not-found', message: 'Actor was not found' } } });
    assert.equal((await call('/v2/acts/bad%20name/builds')).status, 404);
    // Another user's actor object shows no versions or tags (they would give away build ids).
    const actor = await json(await api(server, OTHER)('/v2/actors/admin~private-app'));
    assert.deepEqual([actor.body.data.versions, actor.body.data.taggedBuilds], [[], {}]);
  });

  test('a producer names its actor as name or username~name; another user\'s name is 403', async () => {
    const id = await createJob(server, 'build', { actId: 'admin~named' });
    assert.equal((await json(await call(`/v2/actor-builds/${id}`))).body.data.actId, 'named');
    const refused = await call('/v2/actor-builds', { method: 'POST', json: { actId: 'janedoe~named' } });
    assert.equal(refused.status, 403);
    for (const actId of ['a~b~c', '~x', 'x~', 'bad name']) {
      const res = await call('/v2/actor-builds', { method: 'POST', json: { actId } });
      assert.equal(res.status, 400, actId);
    }
  });

  test('a run created without a build runs its actor\'s latest build', async () => {
    await createJob(server, 'build', { actId: 'linked', buildNumber: '0.1.1' });
    const latest = await createJob(server, 'build', { actId: 'linked', buildNumber: '0.1.2' });
    const run = (await json(await call(`/v2/actor-runs/${await createJob(server, 'run', { actId: 'linked' })}`))).body.data;
    assert.deepEqual([run.buildId, run.buildNumber], [latest, '0.1.2']);
    const explicit = await createJob(server, 'run', { actId: 'linked', buildId: 'given', buildNumber: '9.9.9' });
    const given = (await json(await call(`/v2/actor-runs/${explicit}`))).body.data;
    assert.deepEqual([given.buildId, given.buildNumber], ['given', '9.9.9']);
  });

  test('DELETE: owner only, 204, later reads 404, followers end cleanly, waiters answer', async () => {
    const id = await createJob(server, 'run', { actId: 'doomed' });
    await append(server, id, 'before the end\n');
    assert.equal((await api(server, OTHER)(`/v2/actor-runs/${id}`, { method: 'DELETE' })).status, 403);
    assert.equal((await fetch(`${server.url}/v2/actor-runs/${id}`, { method: 'DELETE' })).status, 401);
    assert.equal((await call(`/v2/actor-builds/${id}`, { method: 'DELETE' })).status, 404, 'a run is not deleted on the builds path');
    // A live follower: once its stored bytes arrived, the delete must end its response cleanly.
    let received = '';
    let gotBytes!: () => void;
    const firstBytes = new Promise<void>((r) => (gotBytes = r));
    const ended = new Promise<number>((resolve, reject) => {
      get(`${server.url}/v2/logs/${id}?stream=1&raw=1`, (res) => {
        res.on('data', (c: Buffer) => {
          received += c;
          gotBytes();
        });
        res.on('end', () => resolve(res.statusCode!));
        res.on('error', reject);
      }).on('error', reject);
    });
    const waiter = call(`/v2/actor-runs/${id}?waitForFinish=60`);
    await within(firstBytes, 10_000, 'the stored bytes');
    const del = await call(`/v2/actor-runs/${id}`, { method: 'DELETE' });
    assert.equal(del.status, 204);
    assert.equal(await del.text(), '');
    assert.equal(await within(ended, 10_000, 'the follower to end'), 200);
    assert.equal(received, 'before the end\n');
    assert.equal((await within(waiter, 10_000, 'the waiter')).status, 404);
    for (const path of [`/v2/actor-runs/${id}`, `/v2/actor-runs/${id}/log`, `/v2/logs/${id}`]) {
      assert.equal((await call(path)).status, 404, path);
    }
    assert.equal((await append(server, id, 'late')).status, 404);
    assert.equal((await call(`/v2/actor-runs/${id}`, { method: 'DELETE' })).status, 404);
    const build = await createJob(server, 'build');
    await finish(server, build);
    assert.equal((await call(`/v2/actor-builds/${build}`, { method: 'DELETE' })).status, 204);
  });
});
