import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli, spawnServer } from './helpers/cli.js';
import { tempDir } from './helpers/server.js';

const dirs: string[] = [];
const dir = () => {
  const d = tempDir('buildlog-cli-');
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function me(url: string, token: string) {
  const res = await fetch(`${url}/v2/users/me`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as { data?: { username: string } } };
}

describe('buildlog serve', () => {
  test('BUILDLOG_TOKEN makes sure a user owns that token, across restarts', async () => {
    const data = dir();
    const env = { BUILDLOG_TOKEN: 'ci-token-abcdefghijklmnopqrstuvwxyz' };
    for (let i = 0; i < 2; i++) {
      const server = await spawnServer(['--data', data], env);
      try {
        const res = await me(server.url, env.BUILDLOG_TOKEN);
        assert.equal(res.status, 200);
        assert.equal(res.body.data?.username, 'admin');
      } finally {
        assert.equal(await server.stop(), 0, 'SIGTERM is a clean exit');
      }
    }
  });

  test('the first start without a token creates a user and prints its token once', async () => {
    const data = dir();
    const first = await spawnServer(['--data', data]);
    await first.stop();
    const token = /^\s+(buildlog_\w+)$/m.exec(first.stderr())?.[1];
    assert.ok(token, `a token is printed: ${first.stderr()}`);
    const second = await spawnServer(['--data', data]);
    try {
      assert.doesNotMatch(second.stderr(), /buildlog_\w+/, 'no token on later starts');
      assert.equal((await me(second.url, token)).status, 200);
    } finally {
      await second.stop();
    }
  });

  test('flags win over environment variables', async () => {
    const envDir = dir();
    const flagDir = dir();
    const server = await spawnServer(['--data', flagDir, '--host', '127.0.0.1'], {
      BUILDLOG_DATA: envDir,
      BUILDLOG_HOST: '0.0.0.0',
      BUILDLOG_TOKEN: 'flag-test-token-1234567890abcdef',
    });
    await server.stop();
    assert.match(server.stderr(), new RegExp(`data: ${flagDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test('bad flags and foreign data dirs are refused with a clear message and exit code 2', async () => {
    const badPort = await runCli(['serve', '--port', 'eighty']);
    assert.equal(badPort.code, 2);
    assert.match(badPort.stderr, /^buildlog: port must be a whole number, got "eighty"$/m);

    const foreign = dir();
    const db = new Database(join(foreign, 'buildlog.db'));
    db.exec('CREATE TABLE invoices (id INTEGER PRIMARY KEY)');
    db.close();
    const refused = await runCli(['serve', '--port', '0', '--data', foreign]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /belongs to another application/);

    const garbage = dir();
    writeFileSync(join(garbage, 'buildlog.db'), 'this is not a database'.repeat(100));
    const corrupt = await runCli(['serve', '--port', '0', '--data', garbage]);
    assert.equal(corrupt.code, 2);
    assert.match(corrupt.stderr, /buildlog\.db/);
    assert.doesNotMatch(corrupt.stderr, /\n\s+at /, 'no stack trace');
  });
});

describe('buildlog users add', () => {
  test('creates a user and prints its token as the last line of stdout', async () => {
    const data = dir();
    const added = await runCli(['users', 'add', 'alice', '--data', data]);
    assert.equal(added.code, 0, added.stderr);
    const token = added.stdout.trim().split('\n').at(-1)!;
    assert.match(token, /^buildlog_[A-Za-z0-9]{32}$/);
    const duplicate = await runCli(['users', 'add', 'alice', '--data', data]);
    assert.notEqual(duplicate.code, 0);
    assert.match(duplicate.stderr, /already exists/);
    const server = await spawnServer(['--data', data]);
    try {
      const res = await me(server.url, token);
      assert.equal(res.body.data?.username, 'alice');
      const db = new Database(join(data, 'buildlog.db'), { readonly: true });
      const stored = db.prepare('SELECT token_hash FROM users WHERE username = ?').get('alice') as { token_hash: string };
      db.close();
      assert.notEqual(stored.token_hash, token, 'only a hash of the token is stored');
      assert.match(stored.token_hash, /^[0-9a-f]{64}$/);
    } finally {
      await server.stop();
    }
  });
});
