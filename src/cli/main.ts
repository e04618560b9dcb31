import { Command, Option } from 'commander';
import { ConfigError, DEFAULT_PORT } from '../server/config.js';
import { StoreOpenError } from '../store/errors.js';
import { serve } from './serve.js';
import { addUser } from './users.js';

const program = new Command();
program.name('buildlog').description('Live build and run logs, served on the Apify API v2 log endpoints.');

program
  .command('serve')
  .description('start the server (embedded SQLite store under --data)')
  .addOption(new Option('--host <host>', 'address to listen on [env BUILDLOG_HOST, default 127.0.0.1]'))
  .addOption(new Option('--port <port>', `port to listen on [env BUILDLOG_PORT, default ${DEFAULT_PORT}]`))
  .addOption(new Option('--data <dir>', 'data directory [env BUILDLOG_DATA, default ./data]'))
  .addOption(new Option('--retention-chars <n>', 'characters kept per log [env BUILDLOG_RETENTION_CHARS, default 5000000]'))
  .addOption(new Option('--max-body-bytes <n>', 'largest append body, after inflating [env BUILDLOG_MAX_BODY_BYTES, default 8388608]'))
  .addOption(new Option('--private', 'reads need the owner\'s token too [env BUILDLOG_PRIVATE]'))
  .addOption(new Option('--log-level <level>', 'server log level [env BUILDLOG_LOG_LEVEL, default info]'))
  .action(serve);

const users = program.command('users').description('manage users and their tokens');
users
  .command('add <name>')
  .description('create a user; prints its token as the last line of stdout')
  .option('--data <dir>', 'data directory [env BUILDLOG_DATA, default ./data]')
  .action(addUser);

program.parseAsync().catch((err: unknown) => {
  const known = err instanceof ConfigError || err instanceof StoreOpenError || (err as { code?: string }).code === 'EADDRINUSE';
  process.stderr.write(`buildlog: ${err instanceof Error ? err.message : String(err)}\n`);
  if (!known && err instanceof Error && process.env.BUILDLOG_DEBUG) process.stderr.write(`${err.stack}\n`);
  process.exit(known ? 2 : 1);
});
