import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_URL } from '../client/config.js';
import { ConfigError, SERVER_SETTINGS } from '../server/config.js';
import { StoreOpenError } from '../store/errors.js';

// Each command's module is loaded only when that command runs: `buildlog run` and `buildlog mask` start
// without loading the server (Fastify, SQLite), which took a third of a second of every wrapped build.
type Args<T> = T extends (...args: infer A) => unknown ? A : never;
const serve = async (...a: Args<typeof import('./serve.js').serve>) => (await import('./serve.js')).serve(...a);
const addUser = async (...a: Args<typeof import('./users.js').addUser>) => (await import('./users.js')).addUser(...a);
const run = async (...a: Args<typeof import('./run.js').run>) => (await import('./run.js')).run(...a);
const mask = async (...a: Args<typeof import('./mask.js').mask>) => (await import('./mask.js')).mask(...a);
const logs = async (...a: Args<typeof import('./logs.js').logs>) => (await import('./logs.js')).logs(...a);
const backup = async (...a: Args<typeof import('./backup.js').backup>) => (await import('./backup.js')).backup(...a);
const check = async (...a: Args<typeof import('./check.js').check>) => (await import('./check.js')).check(...a);
const migrate = async (...a: Args<typeof import('./migrate.js').migrate>) => (await import('./migrate.js')).migrate(...a);
const gc = async (...a: Args<typeof import('./gc.js').gc>) => (await import('./gc.js')).gc(...a);

const program = new Command();
program
  .name('buildlog')
  .description('Live build and run logs, served on the Apify API v2 log endpoints.')
  // Lets `run` pass the wrapped command's own options through (`buildlog run make -j4`).
  .enablePositionalOptions();

const serveCommand = program.command('serve').description('start the server (embedded SQLite store under --data, or PostgreSQL with --database-url)');
for (const setting of SERVER_SETTINGS) {
  const fallback = setting.default === undefined || setting.default === false ? '' : `, default ${setting.default}`;
  serveCommand.addOption(new Option(setting.flag, `${setting.help} [env ${setting.env}${fallback}]`));
}
serveCommand.action(serve);

const dataOption = () => new Option('--data <dir>', 'data directory [env BUILDLOG_DATA, default ./data]');
const databaseUrlOption = (what: string) => new Option('--database-url <url>', `${what} [env BUILDLOG_DATABASE_URL]`);
const databaseSchemaOption = () => new Option('--database-schema <name>', 'its schema [env BUILDLOG_DATABASE_SCHEMA, default public]');

const users = program.command('users').description('manage users and their tokens');
users
  .command('add <name>')
  .description('create a user; prints its token as the last line of stdout')
  .addOption(dataOption())
  .addOption(databaseUrlOption('PostgreSQL of a scale-out installation instead of --data'))
  .addOption(databaseSchemaOption())
  .action(addUser);

/** Usage errors of the client commands exit with 2 (commander's own default is 1). */
const usageExit = (err: CommanderError) => process.exit(err.exitCode === 0 ? 0 : 2);
const urlOption = () => new Option('--url <url>', `server URL [env BUILDLOG_URL, default ${DEFAULT_URL}]`);
const tokenOption = () => new Option('--token <token>', 'API token [env BUILDLOG_TOKEN]');
const collect = (value: string, previous: string[] = []) => [...previous, value];
const maskOptions = () => [
  new Option('--mask-env <name>', 'mask the value of this environment variable (repeatable) [env BUILDLOG_MASK_ENV=NAME1,NAME2]').argParser(collect),
  new Option('--no-auto-mask', 'do not mask variables whose names contain TOKEN, SECRET, PASSWORD, PASSWD, API_KEY or PRIVATE_KEY'),
];

const runCommand = program
  .command('run')
  .description('run a command, echo its output and stream it into a new build log; exits with its exit code')
  .usage('[options] -- <command> [args...]')
  .argument('<command>', 'the command to run (no shell: use `sh -c "..."` for pipes and globs)')
  .argument('[args...]', 'its arguments')
  .addOption(urlOption())
  .addOption(tokenOption())
  .addOption(new Option('--kind <kind>', 'create a build or a run').choices(['build', 'run']).default('build'))
  .addOption(new Option('--actor <name>', 'actor name for the job object (actId)'))
  .addOption(new Option('--build-number <version>', 'build number for the job object, such as 0.1.2'))
  .addOption(new Option('--timeout <secs>', 'stop the command after this long; status TIMED-OUT, exit code 124'))
  .addOption(new Option('--kill-after <secs>', 'after SIGTERM, wait this long before SIGKILL').default('10'))
  .addOption(new Option('--no-timestamps', 'send output bytes as they come, without a timestamp per line'))
  .addOption(new Option('--allow-offline', 'run the command even when the server cannot be reached (no log)'))
  .addOption(new Option('--flush-timeout <secs>', 'after the command ends, keep trying to deliver its output this long').default('300'))
  .addOption(new Option('--heartbeat <secs>', 'while the command prints nothing, an empty append this often tells the server it is alive').default('60'))
  .addOption(new Option('--memory-buffer <bytes>', 'undelivered output kept in memory before it spills to a temp file').default(String(32 * 1024 * 1024)))
  .addOption(new Option('--pass-token', 'let the command inherit BUILDLOG_TOKEN (by default it is removed from its environment)'))
  .passThroughOptions()
  .exitOverride(usageExit)
  .action(run);
for (const option of maskOptions()) runCommand.addOption(option);

const maskCommand = program
  .command('mask')
  .description('mask secrets as `buildlog run` does, as a filter from stdin to stdout');
for (const option of maskOptions()) maskCommand.addOption(option);
maskCommand.exitOverride(usageExit).action(mask);


program
  .command('backup <out>')
  .description('copy the database into the data dir <out>, consistently, also while a server runs on it')
  .addOption(dataOption())
  .action(backup);

program
  .command('gc')
  .description('delete the jobs finished longer ago than --older-than, with their logs (what --expire-after does in the server)')
  .addOption(dataOption())
  .addOption(new Option('--older-than <duration>', 'such as 7d, 12h or 90s'))
  .addOption(new Option('--dry-run', 'list them (one id a line) and delete nothing'))
  .action(gc);

program
  .command('check')
  .description("verify the database and every log's stored bytes; exit 1 naming what is damaged")
  .addOption(dataOption())
  .action(check);

program
  .command('migrate')
  .description('copy an embedded installation (--data: users, jobs, logs) into PostgreSQL (--database-url); run it with the embedded server stopped')
  .addOption(dataOption())
  .addOption(databaseUrlOption('the PostgreSQL to copy into'))
  .addOption(databaseSchemaOption())
  .addOption(new Option('--retention-chars <n>', 'characters kept per log in the target, as its servers will run [env BUILDLOG_RETENTION_CHARS]'))
  .action(migrate);

program
  .command('logs <id>')
  .description('print a build or run log to stdout; exit code 0 succeeded, 1 failed, 2 usage or network error')
  .addOption(urlOption())
  .addOption(tokenOption())
  .addOption(new Option('-f, --follow', 'keep printing new output until the job ends (reconnects without gap or duplicate)'))
  .addOption(new Option('--raw', 'keep ANSI escape sequences and control characters'))
  .addOption(new Option('--since-offset <n>', 'start at this absolute byte offset of the log'))
  .exitOverride(usageExit)
  .action(logs);

program.parseAsync().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof StoreOpenError || (err as { code?: string }).code === 'EADDRINUSE';
  process.stderr.write(`buildlog: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!known && err instanceof Error && process.env.BUILDLOG_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(known ? 2 : 1);
});
