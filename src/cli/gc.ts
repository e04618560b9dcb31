import { existsSync } from 'node:fs';
import { DEFAULT_RETENTION_CHARS } from '../core/retention.js';
import { Expirer, expiredJobs } from '../ops/expiry.js';
import { ConfigError, parseDuration } from '../server/config.js';
import { databaseFile, SqliteStore } from '../store/sqlite.js';

/**
 * `buildlog gc --data DIR --older-than 7d [--dry-run]`: what `--expire-after` does in the server, once:
 * deletes the jobs finished longer ago than that, with their logs, and hands the space back. With
 * `--dry-run` it lists them (one id a line on stdout) and deletes nothing.
 */
export async function gc(options: { data?: string; olderThan?: string; dryRun?: boolean }): Promise<void> {
  const dataDir = options.data ?? process.env.BUILDLOG_DATA ?? './data';
  if (!options.olderThan) throw new ConfigError('--older-than is required (such as 7d, 12h or 90s)');
  const olderThan = parseDuration(options.olderThan, '--older-than');
  if (olderThan <= 0) throw new ConfigError('--older-than must be longer than 0');
  if (!existsSync(databaseFile(dataDir))) throw new ConfigError(`there is no ${databaseFile(dataDir)}`);
  const store = new SqliteStore({ dataDir, retentionChars: DEFAULT_RETENTION_CHARS, background: false });
  try {
    if (options.dryRun) {
      const ids = await expiredJobs(store, olderThan, Number.MAX_SAFE_INTEGER);
      for (const id of ids) process.stdout.write(`${id}\n`);
      process.stderr.write(`${ids.length} finished jobs are older than ${options.olderThan}; nothing deleted (--dry-run)\n`);
      return;
    }
    const before = await store.diskUsage();
    const expirer = new Expirer({ store, remove: async (id) => void (await store.deleteJob(id)) }, olderThan);
    let deleted = 0;
    for (let n = await expirer.sweep(); n > 0; n = await expirer.sweep()) deleted += n;
    while ((await store.reclaimSpace()) > 0);
    const freed = before - (await store.diskUsage());
    process.stderr.write(`Deleted ${deleted} finished jobs older than ${options.olderThan} with their logs; ${freed} bytes freed\n`);
  } finally {
    await store.close();
  }
}
