import { existsSync } from 'node:fs';
import { MigrationConflictError, migrateStore } from '../ops/migrate.js';
import { openStore } from '../server/backends.js';
import { ConfigError, resolveConfig } from '../server/config.js';
import { databaseFile, SqliteStore } from '../store/sqlite.js';

/**
 * `buildlog migrate --data DIR --database-url URL`: copies an embedded installation (users, jobs, logs)
 * into PostgreSQL. Run it with the embedded server stopped (what that server accepted after the copy
 * would not be in it); an interrupted copy is finished by running it again. Exit 0: copied; 1: a
 * conflict with what the target holds, or a failure; 2: usage.
 */
export async function migrate(flags: { data?: string; databaseUrl?: string; databaseSchema?: string; retentionChars?: string }): Promise<void> {
  const config = resolveConfig(flags);
  if (!config.databaseUrl) throw new ConfigError('--database-url (or BUILDLOG_DATABASE_URL) names the PostgreSQL to copy into');
  if (!existsSync(databaseFile(config.dataDir))) throw new ConfigError(`there is no ${databaseFile(config.dataDir)} to copy`);
  const source = new SqliteStore({ dataDir: config.dataDir, retentionChars: config.retentionChars, background: false });
  try {
    const target = await openStore(config);
    try {
      const r = await migrateStore(source, target);
      const mib = (r.bytes / 2 ** 20).toFixed(1);
      process.stderr.write(
        `Copied ${r.users} users and ${r.jobs} jobs (${mib} MiB of logs) from ${config.dataDir} into PostgreSQL schema "${config.databaseSchema}"` +
          `${r.skipped ? `; ${r.skipped} users and jobs were there already` : ''}.\n`,
      );
      if (r.unfinished) process.stderr.write(`${r.unfinished} of the jobs had not finished: their producers go on against the new installation.\n`);
    } finally {
      await target.close();
    }
  } catch (err) {
    if (!(err instanceof MigrationConflictError)) throw err;
    process.stderr.write(`buildlog migrate: ${err.message}\n`);
    process.exitCode = 1;
  } finally {
    await source.close();
  }
}
