// `buildlog logs` as users run it: the real CLI in a child process against a real server.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from './helpers/cli.js';
import { closedPort, killAll, startCli, startProxy, until, type CuttableProxy } from './helpers/cli-child.js';
import { append, createJob, finish, startTestServer, type TestServer } from './helpers/server.js';

describe('buildlog logs', () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  const proxies: CuttableProxy[] = [];

  before(async () => {
    server = await startTestServer();
    env = { BUILDLOG_URL: server.url };
  });
  after(async () => {
    killAll();
    for (const p of proxies) await p.close();
    await server.stop();
  });

  const RAW = 'plain line\n\x1b[1;31mred\x1b[0m line\nprogress 10%\rprogress 100%\n\tžluťoučký 🚀\n';
  const TEXT = 'plain line\nred line\nprogress 10%progress 100%\n\tžluťoučký 🚀\n';

  test('prints a finished log to stdout only: ANSI removed by default, byte-exact with --raw; exit 0 when SUCCEEDED', async () => {
    const id = await createJob(server);
    await append(server, id, RAW.slice(0, 20));
    await append(server, id, RAW.slice(20));
    await finish(server, id, 'SUCCEEDED');

    const text = await runCli(['logs', id], env);
    assert.deepEqual([text.code, text.stdout, text.stderr], [0, TEXT, '']);
    const raw = await runCli(['logs', id, '--raw'], env);
    assert.deepEqual([raw.code, raw.stdout, raw.stderr], [0, RAW, '']);
    const since = await runCli(['logs', id, '--raw', '--since-offset', '11'], env);
    assert.deepEqual([since.code, since.stdout], [0, RAW.slice(11)]);
    // At the end of a finished log there is nothing more to print; that is not an error.
    const atEnd = await runCli(['logs', id, '--since-offset', String(Buffer.byteLength(RAW))], env);
    assert.deepEqual([atEnd.code, atEnd.stdout, atEnd.stderr], [0, '', '']);
  });

  test('exit 1 when the job FAILED (or ended otherwise), also for runs; 0 for a job still running', async () => {
    const failed = await createJob(server);
    await append(server, failed, 'error: boom\n');
    await finish(server, failed, 'FAILED');
    const res = await runCli(['logs', failed], env);
    assert.deepEqual([res.code, res.stdout], [1, 'error: boom\n']);

    const aborted = await createJob(server, 'run');
    await finish(server, aborted, 'ABORTED', 'run');
    assert.equal((await runCli(['logs', aborted, '--follow'], env)).code, 1);

    const running = await createJob(server);
    await append(server, running, 'so far\n');
    const now = await runCli(['logs', running], env);
    assert.deepEqual([now.code, now.stdout], [0, 'so far\n']);
  });

  test('usage and network errors: exit 2 with one line on stderr, nothing on stdout', async () => {
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['logs', 'NoSuchJob12345678'], env, /^buildlog: no build or run with id "NoSuchJob12345678" \(record-not-found\)\n$/],
      [['logs', 'x', '--since-offset', 'ten'], env, /^buildlog: --since-offset must be a byte offset .*\n$/],
      [['logs'], env, /missing required argument 'id'/],
      [['logs', 'abc', '--url', 'ftp://example.com'], env, /^buildlog: server URL must be an http\(s\) URL.*\n$/],
      [['logs', 'abc'], { BUILDLOG_URL: `http://127.0.0.1:${await closedPort()}` }, /^buildlog: cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\)\n$/],
    ];
    for (const [args, e, message] of cases) {
      const res = await runCli(args, e);
      assert.equal(res.code, 2, `${args.join(' ')}: ${res.stderr}`);
      assert.equal(res.stdout, '');
      assert.match(res.stderr, message);
    }
  });

  test('--follow prints new output as it is appended and exits when the job ends', async () => {
    const id = await createJob(server);
    await append(server, id, 'one\n');
    const cli = startCli(['logs', id, '--follow'], env);
    await until(() => cli.stdout().toString() === 'one\n', 'the first line');
    await append(server, id, 'two (partial');
    await until(() => cli.stdout().toString() === 'one\ntwo (partial', 'a partial line, printed at once');
    await append(server, id, ')\nthree\n');
    await until(() => cli.stdout().toString() === 'one\ntwo (partial)\nthree\n', 'the rest');
    assert.equal(cli.child.exitCode, null, 'still following');
    await finish(server, id, 'SUCCEEDED');
    assert.equal(await cli.wait(), 0, cli.stderr());
    assert.equal(cli.stdout().toString(), 'one\ntwo (partial)\nthree\n');
    assert.equal(cli.stderr(), '');
  });

  test('--follow survives dropped connections: every line exactly once, resumed with Range', async () => {
    const proxy = await startProxy(server.url);
    proxies.push(proxy);
    const id = await createJob(server);
    const line = (i: number) => `line ${String(i).padStart(5, '0')} \x1b[32m${'x'.repeat(i % 50)}\x1b[0m\n`;
    const shown = (i: number) => line(i).replace(/\x1b\[\d+m/g, '');
    let next = 1;
    const appendLines = async (n: number) => {
      let chunk = '';
      for (let k = 0; k < n; k++) chunk += line(next++);
      // Several appends per round, some of them split mid-line and mid-escape-sequence.
      const cut = Math.floor(chunk.length / 3);
      await append(server, id, chunk.slice(0, cut));
      await append(server, id, chunk.slice(cut));
    };

    await appendLines(100);
    const cli = startCli(['logs', id, '--follow', '--url', proxy.url], {});
    for (let round = 0; round < 4; round++) {
      const last = shown(next - 1);
      await until(() => cli.stdout().toString().endsWith(last), `round ${round} printed`);
      assert.ok(proxy.cut() > 0, 'a connection was open and is now cut');
      // Appends land while the follower is disconnected; it must read them back from the store.
      await appendLines(150);
    }
    const last = shown(next - 1);
    await until(() => cli.stdout().toString().endsWith(last), 'the last line');
    await finish(server, id, 'SUCCEEDED');
    assert.equal(await cli.wait(), 0, cli.stderr());

    const expected = Array.from({ length: next - 1 }, (_, i) => shown(i + 1)).join('');
    assert.equal(cli.stdout().toString(), expected, 'every line exactly once, in order');
    assert.ok(proxy.connections() >= 5, `reconnected after each cut (${proxy.connections()} connections)`);
    assert.match(cli.stderr(), /connection lost .*; resuming at byte \d+/);
  });

  test('--follow of a job that is already finished just prints it', async () => {
    const id = await createJob(server);
    await append(server, id, 'all of it\n');
    await finish(server, id, 'SUCCEEDED');
    const res = await runCli(['logs', '-f', id], env);
    assert.deepEqual([res.code, res.stdout, res.stderr], [0, 'all of it\n', '']);
  });
});
