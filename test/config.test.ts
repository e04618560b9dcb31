// Every server setting: a flag wins over its environment variable, which wins over the default; a bad value of
// each kind is refused at start with a one-line message and exit code 2.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { ConfigError, flagProperty, parseDuration, parseSize, resolveConfig, SERVER_SETTINGS } from '../src/server/config.js';
import { runCli } from './helpers/cli.js';
import { tempDir } from './helpers/server.js';

type Setting = (typeof SERVER_SETTINGS)[number];

/** Two valid values other than the default (the flag's and the environment's), as text and as parsed. */
function samples(s: Setting): [unknown, unknown][] {
  switch (s.kind) {
    case 'string':
      return [
        ['flag-value', 'flag-value'],
        ['env-value', 'env-value'],
      ];
    case 'choice': {
      const others = s.choices!.filter((c) => c !== s.default);
      return [
        [others[0]!.toUpperCase(), others[0]],
        [` ${others[1] ?? others[0]} `, others[1] ?? others[0]],
      ];
    }
    case 'integer': {
      const min = s.min ?? 0;
      const values = [min, min + 1, min + 2].filter((n) => n !== s.default);
      return [
        [String(values[0]), values[0]],
        [` ${values[1]} `, values[1]],
      ];
    }
    case 'boolean':
      return [
        [true, true],
        ['yes', true],
      ];
    case 'duration':
      return [
        ['12h', 43_200],
        [' 90s ', 90],
      ];
    case 'size':
      return [
        ['3MB', 3_000_000],
        [' 2GiB ', 2 * 1024 ** 3],
      ];
  }
}

/** The default as resolved (durations and sizes are written readably in the table: `30d`). */
function defaultOf(s: Setting): unknown {
  if (s.kind === 'duration') return parseDuration(String(s.default));
  if (s.kind === 'size') return parseSize(String(s.default));
  return s.default;
}

/** Values each kind must refuse, as an environment variable. */
function badValues(s: Setting): string[] {
  switch (s.kind) {
    case 'string':
      return [];
    case 'choice':
      return ['nonsense'];
    case 'boolean':
      return ['maybe', '2'];
    case 'integer':
      return ['twelve', '-1', '1.5', '1e3', ...(s.min ? [String(s.min - 1)] : []), ...(s.max !== undefined ? [String(s.max + 1)] : [])];
    case 'duration':
      return ['soon', '-1d', '3 fortnights'];
    case 'size':
      return ['big', '-5MB', '2 GiBs'];
  }
}

describe('server settings: flags > environment > defaults', () => {
  for (const s of SERVER_SETTINGS) {
    test(`${s.flag.split(' ')[0]} / ${s.env}`, () => {
      const [[flagText, flagValue], [envText, envValue]] = samples(s);
      const flags = { [flagProperty(s.flag)]: flagText as string | boolean };
      const env = { [s.env]: envText as string };
      assert.equal(resolveConfig({}, {})[s.key], defaultOf(s), 'default');
      assert.equal(resolveConfig({}, env)[s.key], s.kind === 'boolean' ? true : envValue, 'environment over default');
      if (s.kind === 'boolean') {
        // A boolean flag can only switch on: the environment's "off" loses to it.
        assert.equal(resolveConfig(flags, { [s.env]: 'false' })[s.key], true, 'flag over environment');
        assert.equal(resolveConfig({}, { [s.env]: 'off' })[s.key], false);
      } else {
        assert.notDeepEqual(flagValue, envValue);
        assert.equal(resolveConfig(flags, env)[s.key], flagValue, 'flag over environment');
      }
      // An empty variable is unset.
      assert.equal(resolveConfig({}, { [s.env]: '' })[s.key], defaultOf(s));
      for (const bad of badValues(s)) {
        assert.throws(() => resolveConfig({}, { [s.env]: bad }), ConfigError, `${s.env}=${bad} is refused`);
        assert.throws(() => resolveConfig({ [flagProperty(s.flag)]: bad }, {}), ConfigError, `${s.flag}=${bad} is refused`);
      }
    });
  }
});

describe('buildlog serve refuses a bad value of each setting with exit code 2', () => {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test('--help lists every setting with its variable', async () => {
    const help = await runCli(['serve', '--help']);
    assert.equal(help.code, 0);
    for (const s of SERVER_SETTINGS) {
      assert.ok(help.stdout.includes(s.flag.split(' ')[0]!) && help.stdout.includes(s.env), `${s.flag} [env ${s.env}] in --help`);
    }
  });

  for (const s of SERVER_SETTINGS.filter((setting) => badValues(setting).length > 0)) {
    test(`${s.env}=${badValues(s)[0]} and ${s.flag.split(' ')[0]} ${badValues(s).at(-1)}`, async () => {
      const data = tempDir('buildlog-config-');
      dirs.push(data);
      const bad = badValues(s);
      const flag = s.flag.split(' ')[0]!;
      // `--port 0` keeps a server that wrongly starts off the default port; it would hide a bad BUILDLOG_PORT.
      const base = ['serve', '--data', data, ...(flag === '--port' ? [] : ['--port', '0'])];
      // A boolean flag takes no value: its bad values can only come from the environment.
      const [fromEnv, fromFlag] = await Promise.all([
        runCli(base, { [s.env]: bad[0]! }),
        s.kind === 'boolean' ? undefined : runCli([...base, flag, bad.at(-1)!], {}),
      ]);
      assert.equal(fromEnv.code, 2, fromEnv.stderr);
      assert.match(fromEnv.stderr, new RegExp(`^buildlog: ${s.env} must be .+, got "?${bad[0]!.replace('.', '\\.')}"?$`, 'm'));
      if (!fromFlag) return;
      assert.equal(fromFlag.code, 2, fromFlag.stderr);
      assert.match(fromFlag.stderr, new RegExp(`^buildlog: ${flag.slice(2)} must be `, 'm'));
    });
  }
});
