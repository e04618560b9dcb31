import type { PoolClient } from 'pg';
import { StoreOpenError } from './errors.js';
import { ensureTrigramIndex } from './postgres-search-index.js';

const APP_ID = 'buildlog';

/**
 * Versioned migrations: MIGRATIONS[i] takes an empty database (i = 0) or schema version i to version i + 1.
 * Every step runs in the transaction that records its version.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    proxy_password TEXT NOT NULL,
    created_at BIGINT NOT NULL
  );
  CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    user_id TEXT NOT NULL,
    act_id TEXT NOT NULL,
    build_id TEXT,
    build_number TEXT,
    status TEXT NOT NULL,
    status_message TEXT,
    exit_code INTEGER,
    origin TEXT NOT NULL,
    meta TEXT NOT NULL,
    options TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    log_start BIGINT NOT NULL DEFAULT 0,
    log_length BIGINT NOT NULL DEFAULT 0,
    log_chars BIGINT NOT NULL DEFAULT 0,
    -- CRC-32 of every byte ever appended (zlib's), kept as bytes arrive.
    log_crc BIGINT,
    -- Last append, heartbeat (empty append) or status change: what the inactivity timeout looks at.
    active_at BIGINT NOT NULL,
    -- A finished log whose rows were merged into large ones (which PostgreSQL compresses).
    packed BOOLEAN NOT NULL DEFAULT false
  );
  CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX jobs_to_pack ON jobs (id) WHERE NOT packed AND finished_at IS NOT NULL;
  CREATE INDEX jobs_unfinished ON jobs (active_at) WHERE status IN ('READY', 'RUNNING', 'ABORTING', 'TIMING-OUT');
  CREATE INDEX jobs_by_actor ON jobs (act_id, kind, started_at);
  CREATE INDEX jobs_by_user_kind ON jobs (user_id, kind, started_at, id);
  -- A log is rows of bytes that are never rewritten: an append inserts, retention deletes whole rows.
  -- chars: the characters a row holds, so that retention finds its cut without reading the bytes.
  CREATE TABLE chunks (
    job_id TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    chars BIGINT NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (job_id, "offset")
  );`,
  // 2: when the status last changed, so that any node can end a graceful abort once its grace period is
  // over. Unknown for older rows; an ABORTING one counts from its last activity, no earlier than its abort.
  `ALTER TABLE jobs ADD COLUMN status_at BIGINT;
  UPDATE jobs SET status_at = active_at WHERE status = 'ABORTING';
  CREATE INDEX jobs_aborting ON jobs (status_at) WHERE status = 'ABORTING';`,
  // 3: the search index (postgres-search-index.ts). Its trigram index is made apart (ensureTrigramIndex),
  // as the pg_trgm extension may not be available. Existing logs are not indexed yet (search_to NULL).
  `ALTER TABLE jobs ADD COLUMN search_to BIGINT, ADD COLUMN search_line BIGINT NOT NULL DEFAULT 0;
  CREATE INDEX jobs_unindexed ON jobs (id) WHERE search_to IS NULL;
  CREATE TABLE search_blocks (
    job_id TEXT NOT NULL,
    "offset" BIGINT NOT NULL,
    "end" BIGINT NOT NULL,
    -- The number of the block's first line among all lines indexed for the job, and its newlines.
    line BIGINT NOT NULL,
    lines INTEGER NOT NULL,
    -- Without ANSI codes, lower-cased.
    text TEXT NOT NULL,
    PRIMARY KEY (job_id, "offset")
  );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

/** An arbitrary constant: the advisory lock all nodes take to migrate, so that only one does it. */
const MIGRATION_LOCK = 0x62_75_69_6c;

/**
 * Brings the schema to the current version. Several nodes may start at once: they queue on an advisory
 * lock held for the transaction, and the later ones find the work done (`schema` is a checked identifier). A database of another
 * application, or of a newer buildlog, is refused untouched. Resolves with whether search has its trigram
 * index, or why not.
 */
export async function migrate(client: PoolClient, schema: string, where: string): Promise<Awaited<ReturnType<typeof ensureTrigramIndex>>> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    // The connection's search_path names it; tables created below go into it.
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await client.query('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    const rows = (await client.query<{ key: string; value: string }>('SELECT key, value FROM meta')).rows;
    const meta = new Map(rows.map((r) => [r.key, r.value]));
    const tables = Number((await client.query<{ n: string }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = current_schema() AND table_name <> 'meta'",
    )).rows[0]!.n);
    if (!meta.has('app')) {
      if (meta.size > 0 || tables > 0) throw new StoreOpenError(`${where} holds tables of another application; refusing to use it`);
      await client.query("INSERT INTO meta (key, value) VALUES ('app', $1), ('schema', '0')", [APP_ID]);
      meta.set('schema', '0');
    } else if (meta.get('app') !== APP_ID) {
      throw new StoreOpenError(`${where} belongs to "${meta.get('app')}", not buildlog; refusing to use it`);
    }
    const version = Number(meta.get('schema'));
    if (!Number.isInteger(version) || version < 0 || version > SCHEMA_VERSION) {
      throw new StoreOpenError(`${where} has schema version ${meta.get('schema')}; this buildlog knows up to ${SCHEMA_VERSION}`);
    }
    for (const step of MIGRATIONS.slice(version)) await client.query(step);
    if (version < SCHEMA_VERSION) await client.query("UPDATE meta SET value = $1 WHERE key = 'schema'", [String(SCHEMA_VERSION)]);
    const search = await ensureTrigramIndex(client);
    await client.query('COMMIT');
    return search;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
