import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { runCli, spawnServer, type Launch, type ServerProcess } from './helpers/cli.js';
import { tempDir } from './helpers/server.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'package-test-token-0123456789abcdef';

interface PackResult {
  filename: string;
  size: number;
  files: { path: string; size: number }[];
}

/**
 * better-sqlite3's install script fetches a prebuilt binary, and compiles SQLite for minutes when it cannot
 * (as on this offline machine). The binary this checkout's `npm ci` produced is the one a download would
 * give for this Node ABI and platform, so it is offered as a local prebuild: prebuild-install's documented
 * `npm_config_<package>_local_prebuilds` directory. The install still runs better-sqlite3's own install script.
 */
function offerLocalPrebuild(dir: string): Promise<unknown> {
  const require = createRequire(import.meta.url);
  const sqliteDir = join(require.resolve('better-sqlite3/package.json'), '..');
  const { version } = JSON.parse(readFileSync(join(sqliteDir, 'package.json'), 'utf8')) as { version: string };
  const name = `better-sqlite3-v${version}-node-v${process.versions.modules}-${process.platform}-${process.arch}.tar.gz`;
  return run('tar', ['-czf', join(dir, name), '-C', sqliteDir, 'build/Release/better_sqlite3.node']);
}

describe('the npm package', () => {
  const work = tempDir('buildlog-package-');
  const prefix = join(work, 'prefix');
  const elsewhere = join(work, 'elsewhere');
  let pack: PackResult;
  let installed: Launch;

  before(async () => {
    mkdirSync(elsewhere);
    mkdirSync(join(work, 'prebuilds'));
    // `npm pack` runs `prepack` (a clean build) itself: the tarball never depends on a dist/ left behind.
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT, maxBuffer: 16 << 20 });
    pack = (JSON.parse(packed.stdout) as PackResult[])[0]!;
    await offerLocalPrebuild(join(work, 'prebuilds'));
    await run(
      'npm',
      ['install', '--global', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--allow-scripts=better-sqlite3', join(work, pack.filename)],
      { cwd: elsewhere, env: { ...process.env, npm_config_better_sqlite3_local_prebuilds: join(work, 'prebuilds') }, maxBuffer: 16 << 20 },
    );
    // The installed command itself (its `#!/usr/bin/env node` line and bin link), run from an unrelated directory.
    installed = { command: [join(prefix, 'bin', 'buildlog')], cwd: elsewhere };
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  test('holds what runs and nothing else, under 1 MB', () => {
    const paths = pack.files.map((f) => f.path);
    for (const path of paths) {
      assert.match(path, /^(package\.json|README\.md|LICENSE|bin\/[\w.-]+\.js|dist\/[\w/.-]+\.js|web\/[\w/.-]+\.(js|css|html))$/, `unexpected file in the package: ${path}`);
    }
    for (const needed of ['LICENSE', 'README.md', 'bin/buildlog.js', 'dist/cli/main.js', 'dist/server/app.js', 'web/index.html', 'web/viewer.js']) {
      assert.ok(paths.includes(needed), `${needed} is in the package`);
    }
    assert.ok(pack.size < 1_000_000, `tarball is ${pack.size} bytes`);
  });

  test('installed globally: serve, run and logs work from any directory', async () => {
    const data = join(work, 'data');
    let server: ServerProcess | undefined;
    try {
      server = await spawnServer(['--data', data], { BUILDLOG_TOKEN: TOKEN }, 30_000, installed);
      const me = await fetch(`${server.url}/v2/users/me`, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(me.status, 200);
      assert.equal(((await me.json()) as { data: { username: string } }).data.username, 'admin');
      // The viewer's assets come from the package's web/ folder.
      const asset = await fetch(`${server.url}/viewer/viewer.js`);
      assert.equal(asset.status, 200);
      assert.match(asset.headers.get('content-type') ?? '', /javascript/);

      const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: TOKEN };
      const ran = await runCli(['run', '--no-timestamps', '--', process.execPath, '-e', 'console.log("built from the package")'], env, 30_000, installed);
      assert.equal(ran.code, 0, ran.stderr);
      const id = /build (\w{17}) started/.exec(ran.stderr)?.[1];
      assert.ok(id, `run names its build: ${ran.stderr}`);
      const logs = await runCli(['logs', id], env, 30_000, installed);
      assert.equal(logs.code, 0, logs.stderr);
      assert.equal(logs.stdout, 'built from the package\n');
    } finally {
      if (server) assert.equal(await server.stop(), 0);
    }
  });
});
