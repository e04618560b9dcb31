// `buildlog run` as users run it: the real CLI in a child process, wrapping real commands, against a real server.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { ApifyClient } from 'apify-client';
import { runCli, spawnServer, type ServerProcess } from './helpers/cli.js';
import { closedPort, killAll, startCli, until, type CliChild } from './helpers/cli-child.js';
import { api, startTestServer, tempDir, type TestServer } from './helpers/server.js';

/** `2017-07-14T06:00:49.733Z ` as in Apify's example: ISO-8601 UTC with milliseconds, then one space. */
const STAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /;

/** Checks that every line of a timestamped log starts with a timestamp, and returns the log without them. */
function unstamp(log: string): string {
  const lines = log.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  return lines
    .map((line) => {
      assert.match(line, STAMP, `log line without a timestamp: ${JSON.stringify(line)}`);
      return line.replace(STAMP, '');
    })
    .join('');
}

/** `-- node -e SCRIPT`: the wrapped command. */
const node = (script: string) => ['--', process.execPath, '-e', script];

/** A command that stays alive (printing its pid and "ready") until it is stopped. */
const LONG_RUNNING = `console.log('pid=' + process.pid); console.log('ready'); setInterval(() => {}, 1000);`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const jobIdOf = (stderr: string) => {
  const m = /buildlog: (?:build|run) ([A-Za-z0-9]{17}) started/.exec(stderr);
  assert.ok(m, `the job id is printed: ${stderr}`);
  return m[1]!;
};

describe('buildlog run', () => {
  let server: TestServer;
  let env: NodeJS.ProcessEnv;
  let call: ReturnType<typeof api>;

  before(async () => {
    server = await startTestServer();
    env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: server.token };
    call = api(server, server.token);
  });
  after(async () => {
    killAll();
    await server.stop();
  });

  const job = async (id: string, kind = 'build') =>
    ((await (await call(`/v2/actor-${kind}s/${id}`)).json()) as { data: Record<string, unknown> }).data;
  const rawLog = async (id: string) => (await call(`/v2/logs/${id}?raw=1`)).text();

  /** Starts `buildlog run` and waits until the wrapped command printed "ready". */
  async function startReady(args: string[]): Promise<{ cli: CliChild; id: string; pid: number }> {
    const cli = startCli(['run', ...args], env);
    await until(() => cli.stdout().toString().includes('ready\n'), 'the command to be ready');
    const pid = Number(/pid=(\d+)/.exec(cli.stdout().toString())![1]);
    return { cli, id: jobIdOf(cli.stderr()), pid };
  }

  test('success: output echoed unchanged, log = output with a timestamp per line, status SUCCEEDED, exit 0', async () => {
    const out = ['first line', 'ünïcödé ✓ 🚀', '', '\ttabbed', 'carriage\r', 'last line'];
    const err = ['warning: one', 'warning: two'];
    const script = `
      for (const l of ${JSON.stringify(out)}) process.stdout.write(l + '\\n');
      for (const l of ${JSON.stringify(err)}) process.stderr.write(l + '\\n');`;
    const res = await runCli(['run', ...node(script)], env);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, out.map((l) => `${l}\n`).join(''), 'stdout echoed byte for byte');
    assert.ok(res.stderr.includes(err.map((l) => `${l}\n`).join('')), 'stderr echoed');

    const id = jobIdOf(res.stderr);
    assert.ok(res.stderr.includes(`${server.url}/v2/logs/${id}`), 'prints the API log URL');
    assert.ok(res.stderr.includes(`${server.url}/logs/${id}`), 'prints the viewer URL');
    const data = await job(id);
    assert.equal(data.status, 'SUCCEEDED');
    assert.equal(data.exitCode, 0);
    assert.equal((data.meta as { origin: string }).origin, 'CLI');

    // Both streams are in the log, each line whole and in its stream's order (the two pipes are read
    // independently, so how stdout and stderr lines interleave is up to the scheduler).
    const lines = unstamp(await rawLog(id)).split('\n');
    assert.equal(lines.pop(), '', 'the log ends with the last newline');
    assert.deepEqual(lines.filter((l) => !err.includes(l)), out);
    assert.deepEqual(lines.filter((l) => err.includes(l)), err);
  });

  test('failure: the command exit code is passed through, status FAILED', async () => {
    const res = await runCli(['run', ...node(`console.log('compiling'); console.error('error: boom'); process.exit(3)`)], env);
    assert.equal(res.code, 3);
    const id = jobIdOf(res.stderr);
    const data = await job(id);
    assert.equal(data.status, 'FAILED');
    assert.equal(data.exitCode, 3);
    assert.equal(data.statusMessage, 'Exited with code 3');
    assert.match(res.stderr, new RegExp(`build ${id} FAILED \\(exit code 3\\)`));
    const logged = unstamp(await rawLog(id));
    assert.ok(logged.includes('compiling\n') && logged.includes('error: boom\n'), logged);
  });

  test('--timeout: the command is killed, status TIMED-OUT, exit 124', async () => {
    const cli = startCli(['run', '--timeout', '2', ...node(LONG_RUNNING)], env);
    assert.equal(await cli.wait(), 124, cli.stderr());
    const id = jobIdOf(cli.stderr());
    const data = await job(id);
    assert.equal(data.status, 'TIMED-OUT');
    assert.equal(data.statusMessage, 'Timed out after 2 s');
    assert.equal(unstamp(await rawLog(id)), cli.stdout().toString(), 'the log has what the command printed');
    const pid = Number(/pid=(\d+)/.exec(cli.stdout().toString())?.[1]);
    if (pid) await until(() => !alive(pid), 'the command to be gone');
  });

  test('a quiet command: an empty append (heartbeat) every --heartbeat seconds, 60 by default', async () => {
    // The runner's own interval is what is under test; 1 s instead of the default minute keeps the test short.
    const beats: { url: string; at: number }[] = [];
    const onRequest = (req: IncomingMessage) => {
      if (req.method === 'POST' && req.url?.endsWith('/chunks') && req.headers['content-length'] === '0') beats.push({ url: req.url, at: Date.now() });
    };
    server.app.server.on('request', onRequest);
    try {
      const { cli, id, pid } = await startReady(['--heartbeat', '1', ...node(LONG_RUNNING)]);
      await until(() => beats.length >= 3, 'three heartbeats');
      cli.child.kill('SIGTERM');
      assert.equal(await cli.wait(), 143, cli.stderr());
      assert.ok(beats.every((b) => b.url === `/v2/logs/${id}/chunks`), 'the heartbeats go to the job\'s log');
      // Not more often than asked: one per quiet second at most (the server sees them a little apart from when they left).
      for (let i = 1; i < beats.length; i++) assert.ok(beats[i]!.at - beats[i - 1]!.at >= 800, `heartbeats ${beats[i]!.at - beats[i - 1]!.at} ms apart`);
      assert.equal(unstamp(await rawLog(id)), `pid=${pid}\nready\n`, 'a heartbeat adds nothing to the log');
    } finally {
      server.app.server.off('request', onRequest);
    }
    const help = await runCli(['run', '--help'], env);
    assert.match(help.stdout.replace(/\s+/g, ' '), /--heartbeat <secs> [^-]*\(default: "60"\)/);
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    test(`${signal}: forwarded to the command, status ABORTED, exit ${code}`, async () => {
      const { cli, id, pid } = await startReady(node(LONG_RUNNING));
      cli.child.kill(signal);
      assert.equal(await cli.wait(), code, cli.stderr());
      await until(() => !alive(pid), 'the command to be gone');
      const data = await job(id);
      assert.equal(data.status, 'ABORTED');
      assert.equal(data.statusMessage, `Aborted: buildlog run received ${signal}`);
      // The status is set only after the last byte was acknowledged, so the log is complete by now.
      assert.equal(unstamp(await rawLog(id)), `pid=${pid}\nready\n`);
    });
  }

  test('an abort through the API (apify-client) stops the command: status ABORTED, exit 143', async () => {
    const { cli, id, pid } = await startReady([
      '--kind',
      'run',
      '--actor',
      'my-actor',
      '--build-number',
      '1.2.3',
      ...node(LONG_RUNNING),
    ]);
    assert.match(cli.stderr(), /buildlog: run [A-Za-z0-9]{17} started/);
    const client = new ApifyClient({ baseUrl: server.url, token: server.token, maxRetries: 0 });
    await client.run(id).abort();
    // The runner holds waitForFinish open, so it hears of the abort at once; the bound is generous and
    // still far below the 60 s a request-per-minute poll would take.
    assert.equal(await cli.wait(15_000), 143, cli.stderr());
    await until(() => !alive(pid), 'the command to be gone');
    const data = await job(id, 'run');
    assert.equal(data.status, 'ABORTED');
    assert.equal(data.actId, 'my-actor');
    assert.equal(data.buildNumber, '1.2.3');
    assert.match(cli.stderr(), /set to ABORTED through the API/);
    assert.equal(unstamp(await rawLog(id)), `pid=${pid}\nready\n`);
  });

  test('a partial line (no newline yet) reaches the log while the command still runs', async () => {
    const script = `
      process.stdout.write('Progress 50%');
      process.stdin.once('data', () => { process.stdout.write(' done\\n'); process.stdout.write('tail without newline'); process.exit(0); });`;
    const cli = startCli(['run', ...node(script)], env);
    await until(() => cli.stderr().includes('started'), 'the job to be created');
    const id = jobIdOf(cli.stderr());
    // The command waits for our stdin, so it is certainly still running when the partial line shows.
    await until(async () => (await rawLog(id)).includes('Progress 50%'), 'the partial line in the log');
    assert.equal((await job(id)).status, 'RUNNING');
    cli.child.stdin.write('go\n');
    assert.equal(await cli.wait(), 0, cli.stderr());
    const log = await rawLog(id);
    assert.match(log, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z Progress 50% done\n\d{4}-\S+Z tail without newline$/);
    assert.equal(unstamp(log), 'Progress 50% done\ntail without newline');
  });

  test('--no-timestamps: the log is the output byte for byte (binary, ANSI, CR, no final newline)', async () => {
    const script = `
      const all = Buffer.alloc(256); for (let i = 0; i < 256; i++) all[i] = i;
      const big = Buffer.alloc(3 * 1024 * 1024); for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
      process.stdout.write(all);
      process.stdout.write('\\x1b[31mred\\x1b[0m progress 10%\\rprogress 100%\\r\\n');
      process.stdout.write(big, () => process.stdout.write(Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x41])));`;
    const res = await runCli(['run', '--no-timestamps', ...node(script)], { ...env, NO_COLOR: '1' }, 60_000);
    assert.equal(res.code, 0, res.stderr);
    const id = jobIdOf(res.stderr);
    const logged = Buffer.from(await (await call(`/v2/logs/${id}?raw=1`)).arrayBuffer());
    const all = Buffer.alloc(256).map((_, i) => i);
    const big = Buffer.alloc(3 * 1024 * 1024).map((_, i) => (i * 7919) % 251);
    const expected = Buffer.concat([
      all,
      Buffer.from('\x1b[31mred\x1b[0m progress 10%\rprogress 100%\r\n'),
      big,
      Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x41]),
    ]);
    assert.equal(logged.length, expected.length);
    assert.ok(logged.equals(expected), 'log bytes equal the output bytes');
  });

  test('an unknown command: exit 127, status FAILED, the reason in the log', async () => {
    const res = await runCli(['run', '--', 'buildlog-no-such-command-xyz', '--flag'], env);
    assert.equal(res.code, 127);
    assert.match(res.stderr, /cannot run "buildlog-no-such-command-xyz": command not found/);
    const id = jobIdOf(res.stderr);
    assert.equal((await job(id)).status, 'FAILED');
    assert.match(unstamp(await rawLog(id)), /command not found/);
  });

  test('an unreachable server is a clear error; --allow-offline runs the command anyway', async () => {
    const offline = { ...env, BUILDLOG_URL: `http://127.0.0.1:${await closedPort()}` };
    const refused = await runCli(['run', ...node(`console.log('the command ran'); process.exit(7)`)], offline);
    assert.equal(refused.code, 2);
    assert.doesNotMatch(refused.stdout, /the command ran/);
    assert.match(refused.stderr, /^buildlog: cannot reach http:\/\/127\.0\.0\.1:\d+ \(.*ECONNREFUSED.*\); the command was not run\..*--allow-offline/m);

    const ran = await runCli(['run', '--allow-offline', ...node(`console.log('the command ran'); process.exit(7)`)], offline);
    assert.equal(ran.code, 7, 'the command exit code');
    assert.equal(ran.stdout, 'the command ran\n');
    assert.match(ran.stderr, /cannot reach .*; running the command without a log \(--allow-offline\)/);
  });

  test('flags win over BUILDLOG_URL / BUILDLOG_TOKEN; a missing or wrong token is exit 2', async () => {
    const wrongEnv = { BUILDLOG_URL: `http://127.0.0.1:${await closedPort()}`, BUILDLOG_TOKEN: 'wrong-token' };
    const res = await runCli(['run', '--url', server.url, '--token', server.token, ...node(`console.log('ok')`)], wrongEnv);
    assert.equal(res.code, 0, res.stderr);
    assert.equal((await job(jobIdOf(res.stderr))).status, 'SUCCEEDED');

    const noToken = await runCli(['run', '--url', server.url, ...node(`console.log('ok')`)]);
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /^buildlog: an API token is needed .*BUILDLOG_TOKEN/m);
    const badToken = await runCli(['run', ...node(`console.log('ok')`)], { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: 'wrong' });
    assert.equal(badToken.code, 2);
    assert.match(badToken.stderr, /cannot create the build .*\(token-not-valid\)/);
    const usage = await runCli(['run', '--timeout', 'soon', ...node(`console.log('ok')`)], env);
    assert.equal(usage.code, 2);
  });
});

describe('buildlog run while the server is killed and restarted', () => {
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  after(async () => {
    killAll();
    for (const s of servers) await s.stop('SIGKILL');
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  test('kill -9 mid-stream, restart on the same port: every line once, in order, status SUCCEEDED', async () => {
    const data = tempDir('buildlog-restart-');
    dirs.push(data);
    const token = 'restart-test-token-0123456789abcdef';
    const serverEnv = { BUILDLOG_TOKEN: token };
    const first = await spawnServer(['--data', data], serverEnv);
    servers.push(first);
    const url = first.url;
    const port = new URL(url).port;
    const logLines = async () => {
      const res = await fetch(`${url}/v2/logs/${id}?raw=1`);
      return (await res.text()).split('\n').length - 1;
    };

    // Five numbered lines every 5 ms until stdin says stop. A tiny memory buffer makes the outage spill to disk.
    const script = `
      let i = 0, stop = false;
      process.stdin.once('data', () => { stop = true; });
      const t = setInterval(() => {
        for (let k = 0; k < 5; k++) console.log('line ' + (++i));
        if (stop) { clearInterval(t); process.exit(0); }
      }, 5);`;
    const cli = startCli(['run', '--memory-buffer', '4096', ...node(script)], { BUILDLOG_URL: url, BUILDLOG_TOKEN: token });
    const echoed = () => cli.stdout().toString().split('\n').length - 1;
    await until(() => /started/.test(cli.stderr()), 'the job to be created');
    const id = jobIdOf(cli.stderr());
    await until(async () => (await logLines()) >= 50, 'lines in the log');

    await first.stop('SIGKILL');
    const atKill = echoed();
    await until(() => echoed() >= atKill + 500, 'the command to go on printing while the server is down');
    await until(() => /buffering it and retrying/.test(cli.stderr()), 'the runner to notice the outage');

    const second = await spawnServer(['--data', data, '--port', port], serverEnv);
    servers.push(second);
    assert.equal(second.url, url, 'same address');
    await until(() => /log upload resumed/.test(cli.stderr()), 'the upload to resume', 30_000);
    cli.child.stdin.write('stop\n');
    assert.equal(await cli.wait(60_000), 0, cli.stderr());

    const n = echoed();
    const expected = Array.from({ length: n }, (_, i) => `line ${i + 1}\n`).join('');
    assert.equal(cli.stdout().toString(), expected, 'the command printed a gapless sequence');
    const log = await (await fetch(`${url}/v2/logs/${id}?raw=1`)).text();
    assert.equal(unstamp(log), expected, 'the log has every line exactly once, in order');
    const data2 = (await (await fetch(`${url}/v2/actor-builds/${id}`)).json()) as { data: { status: string } };
    assert.equal(data2.data.status, 'SUCCEEDED');
    assert.match(cli.stderr(), /bytes were spilled to disk/);
    assert.ok(!/without verification/.test(cli.stderr()), 'the finish was verified: the server has every byte, CRC included');
  });
});
