// The server's own output: stdout is the log (JSON lines for collectors, pino-pretty for people), stderr the
// operator's notices (the first-start token, the address).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { BIN, cleanEnv, runCli, spawnServer } from './helpers/cli.js';
import { tempDir } from './helpers/server.js';

const dirs: string[] = [];
const dir = () => {
  const d = tempDir('buildlog-logfmt-');
  dirs.push(d);
  return d;
};
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function lines(text: string): string[] {
  assert.ok(text.endsWith('\n'), 'the log ends with a whole line');
  return text.slice(0, -1).split('\n');
}

/** Every stdout line as the JSON object it must be. */
function jsonLines(text: string): Record<string, unknown>[] {
  return lines(text).map((line) => {
    const parsed = JSON.parse(line) as unknown;
    assert.ok(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed), `an object: ${line}`);
    return parsed as Record<string, unknown>;
  });
}

describe('buildlog serve --log-format', () => {
  test('json: every stdout line is one JSON object; the first-start token goes to stderr only', async () => {
    const server = await spawnServer(['--data', dir(), '--log-format', 'json', '--log-level', 'info']);
    let token: string | undefined;
    try {
      token = /^\s+(buildlog_\w+)$/m.exec(server.stderr())?.[1];
      assert.ok(token, `the token is on stderr: ${server.stderr()}`);
      assert.equal((await fetch(`${server.url}/v2/users/me?token=${token}`)).status, 200);
      assert.equal((await fetch(`${server.url}/v2/logs/nosuchjob0000000`)).status, 404);
    } finally {
      assert.equal(await server.stop(), 0);
    }
    const records = jsonLines(server.stdout());
    for (const r of records) {
      assert.equal(typeof r.level, 'number');
      assert.equal(typeof r.time, 'number');
      assert.equal(typeof r.msg, 'string');
    }
    const urls = records.map((r) => (r.req as { url?: string } | undefined)?.url).filter(Boolean);
    assert.ok(urls.includes('/v2/users/me?token=[REDACTED]'), `request lines: ${urls.join(', ')}`);
    assert.ok(urls.includes('/v2/logs/nosuchjob0000000'));
    assert.ok(records.some((r) => r.msg === 'shutting down' && r.signal === 'SIGTERM'), 'the shutdown is logged');
    assert.ok(!server.stdout().includes(token!), 'the token never reaches the log');
  });

  test('pretty from BUILDLOG_LOG_FORMAT; a flag wins over it; without either, a pipe gets JSON', async () => {
    const env = { BUILDLOG_TOKEN: 'logfmt-token-0123456789abcdefghij', BUILDLOG_LOG_FORMAT: 'pretty', NO_COLOR: '1' };
    const pretty = await spawnServer(['--data', dir(), '--log-level', 'info'], env);
    assert.equal(await pretty.stop(), 0);
    const prettyLines = lines(pretty.stdout());
    assert.match(prettyLines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Server listening at http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(prettyLines.at(-1)!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: shutting down \{"signal":"SIGTERM"\}$/);
    for (const line of prettyLines) assert.throws(() => JSON.parse(line), `not JSON: ${line}`);

    const flag = await spawnServer(['--data', dir(), '--log-level', 'info', '--log-format', 'json'], env);
    assert.equal(await flag.stop(), 0);
    assert.ok(jsonLines(flag.stdout()).some((r) => r.msg === 'shutting down'));

    const auto = await spawnServer(['--data', dir(), '--log-level', 'info'], { BUILDLOG_TOKEN: env.BUILDLOG_TOKEN });
    assert.equal(await auto.stop(), 0);
    assert.ok(jsonLines(auto.stdout()).some((r) => r.msg === 'shutting down'));
  });

  test('pretty by default on a terminal', async () => {
    // util-linux `script` gives the server a pseudo-terminal as stdout.
    const data = dir();
    const command = [process.execPath, BIN, 'serve', '--port', '0', '--data', data].map((a) => `'${a}'`).join(' ');
    const child = spawn('script', ['-qfec', `exec ${command}`, '/dev/null'], {
      env: { ...cleanEnv(), BUILDLOG_TOKEN: 'logfmt-token-0123456789abcdefghij', NO_COLOR: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    const closed = new Promise((resolve) => child.on('close', resolve));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (chunk) => {
      out += chunk;
      // Ending `script` hangs the terminal up, which ends the server.
      if (/listening on/.test(out)) child.kill('SIGTERM');
    });
    await closed;
    clearTimeout(timer);
    assert.match(out, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: Server listening at http:\/\/127\.0\.0\.1:\d+\r?$/m);
    assert.doesNotMatch(out, /"level":/);
  });

  test('an unknown format or level is refused with exit code 2', async () => {
    const format = await runCli(['serve', '--port', '0', '--data', dir(), '--log-format', 'xml']);
    assert.equal(format.code, 2);
    assert.match(format.stderr, /^buildlog: log-format must be one of pretty, json, got "xml"$/m);
    const level = await runCli(['serve', '--port', '0', '--data', dir()], { BUILDLOG_LOG_LEVEL: 'loud' });
    assert.equal(level.code, 2);
    assert.match(level.stderr, /^buildlog: BUILDLOG_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "loud"$/m);
  });
});
