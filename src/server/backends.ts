import type { LiveBus } from '../live/bus.js';
import { MemoryBus } from '../live/memory.js';
import { RedisBus } from '../live/redis.js';
import { StoreOpenError } from '../store/errors.js';
import { PostgresStore } from '../store/postgres.js';
import { SqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/store.js';
import type { Config } from './config.js';

type StoreConfig = Pick<Config, 'dataDir' | 'retentionChars' | 'databaseUrl' | 'databaseSchema'> & Partial<Pick<Config, 'searchIndexLazy' | 'fsync'>>;

/**
 * The store a configuration names: PostgreSQL with `databaseUrl` (shared by every node), otherwise the
 * embedded SQLite file in `dataDir`. Every command that touches data opens it here.
 */
export async function openStore(config: StoreConfig, onProblem?: (message: string) => void): Promise<Store> {
  if (config.databaseUrl) return PostgresStore.open({ url: config.databaseUrl, schema: config.databaseSchema, retentionChars: config.retentionChars });
  return new SqliteStore({
    dataDir: config.dataDir,
    retentionChars: config.retentionChars,
    fsync: config.fsync,
    indexLogs: config.searchIndexLazy === false,
    onProblem,
  });
}

/** The live bus: Redis between the nodes of a PostgreSQL installation, otherwise in-process. */
export async function openBus(config: Pick<Config, 'databaseUrl' | 'redisUrl'>, onProblem?: (message: string) => void): Promise<LiveBus> {
  if (!config.redisUrl) return new MemoryBus();
  // Nodes share logs through the store: Redis alone would fan out appends that other nodes cannot read.
  if (!config.databaseUrl) throw new StoreOpenError('--redis-url needs --database-url: the nodes share their logs through PostgreSQL');
  return RedisBus.open({
    url: config.redisUrl,
    onConnectionEvent: (what, err) => onProblem?.(err ? `live bus: ${what}: ${err.message}` : `live bus: ${what}`),
  });
}
