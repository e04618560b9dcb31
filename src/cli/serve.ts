import { createUser } from '../auth/tokens.js';
import { resolveConfig, type ConfigFlags } from '../server/config.js';
import { startServer } from '../server/app.js';
import { keepHeapNearLive } from '../server/heap.js';

/**
 * `buildlog serve`: runs until SIGINT/SIGTERM, then shuts down cleanly. stdout carries only the server log
 * (`--log-format`); what the operator must see once (the first-start token, the address) goes to stderr,
 * so a collector of JSON lines never gets a token.
 */
export async function serve(flags: ConfigFlags): Promise<void> {
  const config = resolveConfig(flags);
  keepHeapNearLive();
  const server = await startServer(config, true);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    server.app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    server.close().then(
      () => process.exit(0),
      (err) => {
        server.app.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  // Before the address is announced: whoever sees it may signal at once, and that is a clean shutdown too.
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (!config.token && (await server.store.countUsers()) === 0) {
    const { user, token } = await createUser(server.store, 'admin');
    process.stderr.write(
      `Created user "${user.username}". Its API token (shown only this once):\n\n  ${token}\n\n` +
        `Use it as BUILDLOG_TOKEN, or Authorization: Bearer <token>.\n`,
    );
  }
  process.stderr.write(`buildlog listening on ${server.url} (data: ${config.dataDir})\n`);
}
