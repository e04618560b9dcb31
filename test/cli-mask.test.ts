// Secrets never reach a log: `buildlog run` and `buildlog mask` as users run them, against a real server.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { BIN, cleanEnv, runCli } from './helpers/cli.js';
import { killAll, startCli, startProxy, until } from './helpers/cli-child.js';
import { api, startTestServer, type TestServer } from './helpers/server.js';

const AUTO = 'tok_3f9a8b7c6d5e4f'; // in DEPLOY_API_TOKEN: masked because of its name
const CUSTOM = 'Xy7 custom/Val'; // in DB_PART: masked because of --mask-env
const REGISTERED = 'reg-Val-0042'; // registered by the command with ::add-mask::
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** What the command prints: each secret whole, split at every byte (stderr between the halves), encoded, registered. */
const SCRIPT = `
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  (async () => {
    const s = process.env.DEPLOY_API_TOKEN, c = process.env.DB_PART;
    console.log('whole ' + s + ' and ' + c);
    for (let i = 1; i < s.length; i++) {
      process.stdout.write('split ' + s.slice(0, i));
      await sleep(2);
      if (i % 2 && process.env.INTERLEAVE !== '0') process.stderr.write('interleaved on stderr\\n');
      process.stdout.write(s.slice(i) + '\\n');
      await sleep(2);
    }
    process.stderr.write('on stderr ' + s + '\\n');
    console.log('url ' + encodeURIComponent(c) + ' b64 ' + Buffer.from(s).toString('base64'));
    console.log('basic ' + Buffer.from('user:' + s).toString('base64'));
    console.log('::add-mask::${REGISTERED}');
    console.log('registered ${REGISTERED} ' + Buffer.from('${REGISTERED}').toString('base64'));
    console.log('token ' + (process.env.BUILDLOG_TOKEN ?? 'not inherited'));
    console.log('done');
  })();`;

const FORBIDDEN = [AUTO, CUSTOM, REGISTERED, encodeURIComponent(CUSTOM), b64(AUTO), b64(REGISTERED), '::add-mask::'];

function assertClean(text: string, where: string): void {
  for (const f of FORBIDDEN) assert.ok(!text.includes(f), `${where} contains "${f}":\n${text}`);
}

/** The checks every masked output of SCRIPT passes. */
function assertMasked(text: string, where: string): void {
  assertClean(text, where);
  assert.match(text, /whole \[MASKED\] and \[MASKED\]\n/, where);
  assert.equal(text.match(/split \[MASKED\]\n/g)?.length, AUTO.length - 1, `${where}: every split line is masked whole`);
  assert.match(text, /on stderr \[MASKED\]\n/, where);
  assert.match(text, /url \[MASKED\] b64 \[MASKED\]\n/, where);
  assert.match(text, /basic \S*\[MASKED\]\S*\n/, where);
  assert.match(text, /registered \[MASKED\] \[MASKED\]\n/, where);
  assert.match(text, /done\n/, where);
}

describe('buildlog run masks secrets', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  const secretEnv = { DEPLOY_API_TOKEN: AUTO, DB_PART: CUSTOM };

  before(async () => {
    server = await startTestServer();
    call = api(server, server.token);
  });
  after(async () => {
    killAll();
    await server.stop();
  });

  const jobId = (stderr: string) => /buildlog: build ([A-Za-z0-9]{17}) started/.exec(stderr)![1]!;

  test('in the stored raw and stripped log and in its own echo; the command does not get BUILDLOG_TOKEN', async () => {
    const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: server.token, ...secretEnv };
    const res = await runCli(['run', '--mask-env', 'DB_PART', '--', process.execPath, '-e', SCRIPT], env);
    assert.equal(res.code, 0, res.stderr);
    const id = jobId(res.stderr);
    assertMasked(res.stdout + res.stderr.replace(/^interleaved on stderr\n/gm, ''), 'the echo');
    assert.match(res.stdout, /token not inherited\n/);

    const raw = await (await call(`/v2/logs/${id}?raw=1`)).text();
    const stripped = await (await call(`/v2/logs/${id}`)).text();
    for (const [log, where] of [[raw, 'the raw log'], [stripped, 'the stripped log']] as const) {
      const text = log.replace(/^\S+Z /gm, '').replace(/^interleaved on stderr\n/gm, '');
      assertMasked(text, where);
      assert.match(text, /token not inherited\n/, where);
    }
  });

  test('--pass-token lets the command see BUILDLOG_TOKEN, and its value is still masked', async () => {
    const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: server.token };
    const res = await runCli(['run', '--pass-token', '--no-timestamps', '--', 'sh', '-c', 'env; echo "t=$BUILDLOG_TOKEN"'], env);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /^BUILDLOG_TOKEN=\[MASKED\]$/m);
    assert.match(res.stdout, /^t=\[MASKED\]$/m);
    const log = await (await call(`/v2/logs/${jobId(res.stderr)}?raw=1`)).text();
    assert.ok(!log.includes(server.token) && log.includes('t=[MASKED]'), log);
  });

  test('`env` without --pass-token shows no BUILDLOG_TOKEN; --no-auto-mask keeps other values, never the token', async () => {
    const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: server.token, ...secretEnv };
    const plain = await runCli(['run', '--no-timestamps', '--', 'env'], env);
    assert.equal(plain.code, 0, plain.stderr);
    assert.ok(!/^BUILDLOG_TOKEN=/m.test(plain.stdout), 'not inherited');
    assert.match(plain.stdout, /^DEPLOY_API_TOKEN=\[MASKED\]$/m);
    assert.match(plain.stdout, /^DB_PART=Xy7 custom\/Val$/m, 'a name that says nothing is not masked by default');

    const off = await runCli(['run', '--no-auto-mask', '--pass-token', '--no-timestamps', '--', 'env'], env);
    assert.match(off.stdout, /^DEPLOY_API_TOKEN=tok_3f9a8b7c6d5e4f$/m);
    assert.match(off.stdout, /^BUILDLOG_TOKEN=\[MASKED\]$/m, "buildlog's own token is masked all the same");
  });

  test('BUILDLOG_MASK_ENV names variables too; a name that is not set is a warning', async () => {
    const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: server.token, DB_PART: CUSTOM, BUILDLOG_MASK_ENV: 'DB_PART,NOT_SET_X' };
    const res = await runCli(['run', '--no-timestamps', '--', 'sh', '-c', 'echo "db=$DB_PART"'], env);
    assert.equal(res.code, 0, res.stderr);
    assert.equal(res.stdout, 'db=[MASKED]\n');
    assert.match(res.stderr, /--mask-env NOT_SET_X: no such variable is set/);
  });

  test('nothing of a secret reaches the spill file while the server is away', async () => {
    const proxy = await startProxy(server.url);
    const env = { BUILDLOG_URL: proxy.url, BUILDLOG_TOKEN: server.token, ...secretEnv };
    // A secret line every 2 ms until stdin closes; a 1 KiB memory buffer spills at once during the outage.
    const script = `const t = setInterval(() => console.log('secret ' + process.env.DEPLOY_API_TOKEN + ' ' + '${b64(AUTO)}'), 2);
      process.stdin.on('end', () => { clearInterval(t); }); process.stdin.resume();`;
    const cli = startCli(['run', '--memory-buffer', '1024', '--flush-timeout', '1', '--', process.execPath, '-e', script], env);
    await until(() => /started/.test(cli.stderr()), 'the job to be created');
    await proxy.close();
    // The spill file is unlinked as soon as it is made; /proc still reaches it through the runner's fd.
    const spill = () => {
      for (const fd of readdirSync(`/proc/${cli.child.pid}/fd`)) {
        const path = `/proc/${cli.child.pid}/fd/${fd}`;
        try {
          if (readlinkSync(path).includes('pending.log')) return readFileSync(path);
        } catch {
          // A socket closed between the listing and the look: not the one we want.
        }
      }
      return null;
    };
    await until(() => (spill()?.length ?? 0) > 16 * 1024, 'the runner to spill output to disk');
    const spilled = spill()!.toString();
    assert.match(spilled, /secret \[MASKED\] \[MASKED\]\n/);
    assertClean(spilled, 'the spill file');
    cli.child.stdin.end();
    await cli.wait(30_000);
  });
});

describe('buildlog mask', () => {
  /** Runs `buildlog mask ARGS` with `chunks` written to its stdin one by one, each after the previous was read. */
  function maskFilter(args: string[], env: NodeJS.ProcessEnv, chunks: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'mask', ...args], { env: { ...cleanEnv(), ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
      let i = 0;
      const next = () => (i < chunks.length ? child.stdin.write(chunks[i++]!, () => setTimeout(next, 1)) : child.stdin.end());
      next();
    });
  }

  test('masks what the command printed, with the same flags and the same cases', async () => {
    // The command's own output, stderr into stdout, unmasked.
    const out = spawnSync('sh', ['-c', '"$0" -e "$1" 2>&1', process.execPath, SCRIPT], {
      env: { ...cleanEnv(), DEPLOY_API_TOKEN: AUTO, DB_PART: CUSTOM, INTERLEAVE: '0' },
    });
    const raw = out.stdout.toString();
    assert.ok(raw.includes(AUTO), 'unmasked input for the filter');
    // The same output cut at every byte of the first line that holds the secret, and in 7-byte pieces.
    const at = raw.indexOf(AUTO);
    for (const cut of [at, at + 1, at + 5, at + AUTO.length - 1]) {
      const res = await maskFilter(['--mask-env', 'DB_PART'], { DEPLOY_API_TOKEN: AUTO, DB_PART: CUSTOM }, [raw.slice(0, cut), raw.slice(cut)]);
      assert.equal(res.code, 0, res.stderr);
      assertMasked(res.stdout, `buildlog mask, cut at ${cut}`);
    }
    const pieces = raw.match(/[^]{1,7}/g)!;
    const res = await maskFilter(['--mask-env', 'DB_PART'], { DEPLOY_API_TOKEN: AUTO, DB_PART: CUSTOM }, pieces);
    assertMasked(res.stdout, 'buildlog mask, in 7-byte pieces');
  });

  test('--no-auto-mask leaves names alone; BUILDLOG_TOKEN is masked whatever the flags', async () => {
    const env = { DEPLOY_API_TOKEN: AUTO, BUILDLOG_TOKEN: 'runner-token-abcdef123' };
    const res = await maskFilter(['--no-auto-mask'], env, [`a ${AUTO} b runner-token-abcdef123\n`]);
    assert.equal(res.stdout, `a ${AUTO} b [MASKED]\n`);
  });
});
