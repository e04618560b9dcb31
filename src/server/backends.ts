import type { SharedCounts } from '../limits/shared-counts.js';
import type { LiveBus } from '../live/bus.js';
import { MemoryBus } from '../live/memory.js';
import { StoreOpenError } from '../store/errors.js';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import type { Config } from './config.js';

type StoreConfig = Pick<Config, 'dataDir' | 'retentionChars' | 'databaseUrl' | 'databaseSchema'> & Partial<Pick<Config, 'searchIndexLazy' | 'fsync'>>;

export interface OpenStoreOptions {
  /** Opened by the server (background work such as search indexing runs), not by a one-shot command. */
  server?: boolean;
  /** Where problems of background work are reported. */
  onProblem?: (message: string) => void;
  /** Told the duration of every group commit (the metrics). */
  onCommit?: (seconds: number) => void;
}

/**
 * The store a configuration names: PostgreSQL with `databaseUrl` (shared by every node), otherwise the
 * embedded SQLite file in `dataDir`. Every command that touches data opens it here.
 *
 * The scale-out backends (and `pg`, `ioredis` with them) are imported only when configured: loaded, they
 * take 13 MB of every embedded server's memory for nothing.
 */
export async function openStore(config: StoreConfig, options: OpenStoreOptions = {}): Promise<Store> {
  if (config.databaseUrl) {
    const { PostgresStore } = await import('../store/postgres.js');
    return PostgresStore.open({
      url: config.databaseUrl,
      schema: config.databaseSchema,
      retentionChars: config.retentionChars,
      onCommit: options.onCommit,
      indexLogs: options.server === true && !config.searchIndexLazy,
      onProblem: options.onProblem,
    });
  }
  return new SqliteStore({
    dataDir: config.dataDir,
    retentionChars: config.retentionChars,
    fsync: config.fsync,
    indexLogs: options.server === true && !config.searchIndexLazy,
    onProblem: options.onProblem,
    onCommit: options.onCommit,
  });
}

/**
 * What the nodes of one installation share their Redis keys and channel under: the database and schema
 * they store in, so that installations sharing a Redis do not meet.
 */
function installationPrefix(config: Pick<Config, 'databaseUrl' | 'databaseSchema'>): string {
  let database = 'postgres';
  try {
    database = decodeURIComponent(new URL(config.databaseUrl!).pathname.slice(1)) || database;
  } catch {
    // The store has refused a URL it cannot use by now.
  }
  return `buildlog:${database}.${config.databaseSchema}`;
}

/** The live bus: Redis between the nodes of a PostgreSQL installation, otherwise in-process. */
export async function openBus(config: Pick<Config, 'databaseUrl' | 'databaseSchema' | 'redisUrl'>, onProblem?: (message: string) => void): Promise<LiveBus> {
  if (!config.redisUrl) return new MemoryBus();
  // Nodes share logs through the store: Redis alone would fan out appends that other nodes cannot read.
  if (!config.databaseUrl) throw new StoreOpenError('--redis-url needs --database-url: the nodes share their logs through PostgreSQL');
  const { RedisBus } = await import('../live/redis.js');
  return RedisBus.open({
    url: config.redisUrl,
    channel: `${installationPrefix(config)}:live`,
    onConnectionEvent: (what, err) => onProblem?.(err ? `live bus: ${what}: ${err.message}` : `live bus: ${what}`),
  });
}

/**
 * Rate limits and stream caps counted across the nodes (with `redisUrl`), on a connection of their own;
 * null on a single node. Failures to sync are reported and retried: limits fall back to this node's counts meanwhile.
 */
export async function openSharedCounts(
  config: Pick<Config, 'redisUrl' | 'databaseUrl' | 'databaseSchema'>,
  onProblem: (message: string) => void,
): Promise<{ counts: SharedCounts; close(): Promise<void> } | null> {
  if (!config.redisUrl) return null;
  const [{ Redis }, { SharedCounts }] = await Promise.all([import('ioredis'), import('../limits/shared-counts.js')]);
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false, connectionName: 'buildlog-limits' });
  redis.on('error', () => undefined);
  await redis.connect();
  const counts = new SharedCounts(redis, `${installationPrefix(config)}:limits`);
  let reported = false;
  counts.start((err) => {
    // Once per outage, not ten times a second.
    if (!reported) onProblem(`shared limits: ${err.message}`);
    reported = true;
  });
  return {
    counts,
    async close() {
      await counts.stop();
      await redis.quit().catch(() => undefined);
    },
  };
}
