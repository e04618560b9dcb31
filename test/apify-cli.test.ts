// The official `apify` CLI (npm apify-cli) against buildlog: its builds and runs commands, unchanged.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { api, append, createJob, finish, startTestServer, tempDir, type TestServer } from './helpers/server.js';

/** The package's `apify` bin (its `exports` do not list the file, so it is found from the repository root). */
const APIFY = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'apify-cli', 'dist', 'apify.js');

interface Result {
  code: number | null;
  out: string;
}

describe('apify-cli against buildlog', () => {
  let server: TestServer;
  let home: string;

  /**
   * Runs `apify ARGS` with a HOME of its own (its login lands there, never in the developer's config),
   * the token in a file instead of the OS keyring, no telemetry or update check, and stdin closed (so
   * `--yes` is taken as the confirmation).
   */
  function apify(...args: string[]): Promise<Result> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [APIFY, ...args], {
        cwd: home,
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          PATH: process.env.PATH,
          HOME: home,
          APIFY_CLIENT_BASE_URL: server.url,
          APIFY_DISABLE_KEYRING: '1',
          APIFY_CLI_DISABLE_TELEMETRY: '1',
          APIFY_CLI_SKIP_UPDATE_CHECK: '1',
          FORCE_COLOR: '0',
        },
      });
      let out = '';
      child.stdout.on('data', (c) => (out += c));
      child.stderr.on('data', (c) => (out += c));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`apify ${args.join(' ')} did not finish in 90 s: ${out}`));
      }, 90_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, out });
      });
    });
  }

  const status = async (kind: 'build' | 'run', id: string) =>
    (await api(server, server.token)(`/v2/actor-${kind}s/${id}`)).status;

  before(async () => {
    server = await startTestServer();
    home = tempDir('buildlog-apify-home-');
    const login = await apify('login', '--token', server.token);
    assert.equal(login.code, 0, login.out);
    assert.match(login.out, /logged in to Apify as admin/);
  });
  after(async () => {
    await server.stop();
    rmSync(home, { recursive: true, force: true });
  });

  test('apify builds ls <user/actor> shows the builds by version with the latest tag', async () => {
    const b1 = await createJob(server, 'build', { actId: 'my-app', buildNumber: '0.1.1' });
    await finish(server, b1);
    const b2 = await createJob(server, 'build', { actId: 'admin~my-app', buildNumber: '0.2.1' });
    const { code, out } = await apify('builds', 'ls', 'admin/my-app');
    assert.equal(code, 0, out);
    assert.match(out, /Showing 2 out of 2 builds for Actor admin\/my-app/);
    assert.match(out, new RegExp(`0\\.1\\.1 .*${b1}.*Succeeded`));
    assert.match(out, new RegExp(`0\\.2\\.1 \\(latest\\) .*${b2}.*Running`));
    assert.match(out, /Builds for Actor Version 0\.2 \(latest build gets tagged with latest\)/);
  });

  test('apify runs ls <user/actor> and apify runs info <id>', async () => {
    await createJob(server, 'build', { actId: 'lister', buildNumber: '1.0.7' });
    const r1 = await createJob(server, 'run', { actId: 'lister' });
    const r2 = await createJob(server, 'run', { actId: 'lister' });
    await finish(server, r1, 'FAILED', 'run');
    const ls = await apify('runs', 'ls', 'admin/lister');
    assert.equal(ls.code, 0, ls.out);
    assert.match(ls.out, /Showing 2 out of 2 runs for Actor admin\/lister/);
    assert.match(ls.out, new RegExp(`${r1}\\s+Failed`));
    assert.match(ls.out, new RegExp(`${r2}\\s+Running`));
    const info = await apify('runs', 'info', r2);
    assert.equal(info.code, 0, info.out);
    assert.match(info.out, /Actor: admin\/lister \(lister\)/);
    assert.match(info.out, /Status: Running/);
    assert.match(info.out, /Build: 1\.0\.7 \(latest\)/);
  });

  test('apify runs log, abort and wait <id>', async () => {
    const run = await createJob(server, 'run', { actId: 'lister' });
    await append(server, run, '2026-11-30T10:00:00.000Z compiling\n2026-11-30T10:00:01.000Z ECONNRESET from upstream\n');
    const abort = await apify('runs', 'abort', run, '--force');
    assert.equal(abort.code, 0, abort.out);
    assert.match(abort.out, /Triggered the immediate abort/);
    const log = await apify('runs', 'log', run);
    assert.equal(log.code, 0, log.out);
    assert.match(log.out, /compiling\n.*ECONNRESET from upstream/);
    const aborted = await apify('runs', 'wait', run);
    assert.equal(aborted.code, 3, 'an aborted run is a non-zero exit');
    assert.match(aborted.out, /Run: ABORTED/);
    const other = await createJob(server, 'run', { actId: 'lister' });
    const waiting = apify('runs', 'wait', other, '--poll-interval', '1');
    await finish(server, other, 'SUCCEEDED', 'run');
    const done = await waiting;
    assert.equal(done.code, 0, done.out);
    assert.match(done.out, /Run: SUCCEEDED/);
  });

  test('apify builds wait <id> returns once the build finishes', async () => {
    const build = await createJob(server, 'build', { actId: 'waiter', buildNumber: '0.0.1' });
    const waiting = apify('builds', 'wait', build, '--poll-interval', '1');
    await finish(server, build, 'SUCCEEDED');
    const { code, out } = await waiting;
    assert.equal(code, 0, out);
    assert.match(out, /Build: SUCCEEDED/);
  });

  test('apify builds rm <id> --yes and apify runs rm <id> --yes delete the job', async () => {
    const build = await createJob(server, 'build', { actId: 'doomed', buildNumber: '0.0.1' });
    await finish(server, build);
    const rmBuild = await apify('builds', 'rm', build, '--yes');
    assert.equal(rmBuild.code, 0, rmBuild.out);
    assert.match(rmBuild.out, new RegExp(`Build with ID "${build}" was deleted`));
    assert.equal(await status('build', build), 404);
    const run = await createJob(server, 'run', { actId: 'doomed' });
    await finish(server, run, 'SUCCEEDED', 'run');
    const rmRun = await apify('runs', 'rm', run, '--yes');
    assert.equal(rmRun.code, 0, rmRun.out);
    assert.match(rmRun.out, new RegExp(`Run with ID "${run}" was deleted`));
    assert.equal(await status('run', run), 404);
  });
});
