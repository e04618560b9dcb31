// GET /v2/logs/search over HTTP: token, parameters, the user's own jobs, lines and offsets, paging.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';
import { hashToken } from '../src/auth/tokens.js';
import { newId } from '../src/core/ids.js';

type Json = Record<string, any>;

describe('GET /v2/logs/search', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  const OTHER = 'search-other-token-0123456789abc';

  before(async () => {
    server = await startTestServer();
    call = api(server, server.token);
    await server.store.createUser({ id: newId(), username: 'eve', tokenHash: hashToken(OTHER), proxyPassword: 'p', createdAt: Date.now() });
  });
  after(() => server.stop());

  const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as Json });

  test('answers the token user\'s jobs whose log holds the text, newest first, with lines and offsets', async () => {
    const build = await createJob(server, 'build', { actId: 'api', buildNumber: '0.1.1' });
    await append(server, build, '2026-11-30T10:00:00.000Z start\n2026-11-30T10:00:01.000Z \x1b[31mError: read ECONNRESET\x1b[0m\n');
    await finish(server, build, 'FAILED');
    const run = await createJob(server, 'run', { actId: 'api' });
    await append(server, run, 'retrying after econnreset\n');
    await api(server, OTHER)('/v2/actor-builds', { method: 'POST', json: {} }).then(async (r) => {
      const id = ((await r.json()) as Json).data.id;
      await api(server, OTHER)(`/v2/logs/${id}/chunks`, { method: 'POST', body: 'ECONNRESET of eve\n' });
    });
    const { status, body } = await json(await call('/v2/logs/search?q=ECONNRESET'));
    assert.equal(status, 200);
    const { total, offset, limit, count, items } = body.data;
    assert.deepEqual({ total, offset, limit, count }, { total: 2, offset: 0, limit: 20, count: 2 });
    assert.deepEqual(items.map((i: Json) => [i.id, i.kind]), [[run, 'run'], [build, 'build']]);
    assert.deepEqual(items[1].matches, [{ line: 2, offset: 31, text: '2026-11-30T10:00:01.000Z Error: read ECONNRESET' }]);
    assert.equal(items[1].status, 'FAILED');
    assert.equal(items[1].buildNumber, '0.1.1');
    assert.equal(items[0].moreMatches, false);
    const eve = await json(await api(server, OTHER)('/v2/logs/search?q=econnreset'));
    assert.equal(eve.body.data.total, 1);
    const paged = await json(await call('/v2/logs/search?q=econnreset&offset=1&limit=1&lines=1'));
    assert.deepEqual(paged.body.data.items.map((i: Json) => i.id), [build]);
  });

  test('needs a token; q must be 3 to 200 characters on one line; bad paging is 400', async () => {
    assert.equal((await fetch(`${server.url}/v2/logs/search?q=abc`)).status, 401);
    for (const [query, name] of [['', 'q'], ['q=ab', 'q'], ['q=a%0Ab', 'q'], [`q=${'x'.repeat(201)}`, 'q'], ['q=abc&limit=-1', 'limit'], ['q=abc&offset=x', 'offset'], ['q=abc&lines=1.5', 'lines']]) {
      const { status, body } = await json(await call(`/v2/logs/search?${query}`));
      assert.equal(status, 400, query);
      assert.equal(body.error.type, 'invalid-input');
      assert.match(body.error.message, new RegExp(`"${name}"`));
    }
    assert.equal((await call('/v2/logs/search?q=abc', { method: 'POST' })).status, 405);
  });
});

describe('search over a log that turns over faster than it is indexed', () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ retentionChars: 20_000, rateLimitPerResource: 1_000_000 });
  });
  after(() => server.stop());

  test('each search finds the lines appended just before it, and none retention has dropped', { timeout: 60_000 }, async () => {
    const id = await createJob(server, 'build');
    const filler = `${'build output '.repeat(70)}\n`;
    let offset = 0;
    const put = async (text: string) => {
      const res = await append(server, id, text, offset);
      assert.equal(res.status, 200);
      offset += Buffer.byteLength(text);
    };
    // Each round writes more than the window holds, so the window moves past what the indexer has seen
    // (it defers such a log while it is being written, and indexes it when a search asks).
    for (let round = 0; round < 40; round++) {
      for (let k = 0; k < 25; k++) await put(filler);
      await put(`marker-${round}-end\n`);
      const found = (await (await api(server, server.token)(`/v2/logs/search?q=marker-${round}-end`)).json()) as Json;
      assert.deepEqual(found.data.items.map((i: Json) => [i.id, i.matches.map((m: Json) => m.text)]), [[id, [`marker-${round}-end`]]], `round ${round}`);
      if (round > 0) {
        const gone = (await (await api(server, server.token)(`/v2/logs/search?q=marker-${round - 1}-end`)).json()) as Json;
        assert.equal(gone.data.total, 0, `round ${round - 1}'s marker left the window`);
      }
    }
  });
});
