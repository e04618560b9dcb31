import type Database from 'better-sqlite3';
import { StoreOpenError } from './errors.js';

const APP_ID = 'buildlog';

/** Version 1's tables, as every data dir starts; later versions are reached through MIGRATIONS. */
const BASE_SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id TEXT PRIMARY KEY,
  username TEXT NOT NULL UNIQUE,
  token_hash TEXT NOT NULL UNIQUE,
  proxy_password TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
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
  started_at INTEGER NOT NULL,
  finished_at INTEGER,
  log_start INTEGER NOT NULL DEFAULT 0,
  log_length INTEGER NOT NULL DEFAULT 0,
  log_chars INTEGER NOT NULL DEFAULT 0,
  -- Last append, heartbeat (empty append) or status change: what the inactivity timeout looks at.
  active_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_unfinished ON jobs (active_at)
  WHERE status IN ('READY', 'RUNNING', 'ABORTING', 'TIMING-OUT');
CREATE INDEX IF NOT EXISTS jobs_by_actor ON jobs (act_id, kind, started_at);
CREATE INDEX IF NOT EXISTS jobs_by_user ON jobs (user_id);
CREATE TABLE IF NOT EXISTS chunks (
  job_id TEXT NOT NULL,
  offset INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (job_id, offset)
) WITHOUT ROWID;
`;

/**
 * Schema changes, in order: entry i takes a data dir from version i+1 to i+2. Each runs in one
 * transaction with the version bump, so a data dir is always at one version or the next.
 */
const MIGRATIONS: readonly string[] = [
  // 2: the running CRC-32 of each log, for verified finishes. Logs from before it have none (NULL): it
  // cannot be computed once retention has dropped bytes. (New logs start at 0: see insertJob.)
  'ALTER TABLE jobs ADD COLUMN log_crc INTEGER',
  // 3: operations (issue 11), and the lists' index (which version 2 created on every open, outside the
  // versions: IF NOT EXISTS, as a version 2 file has it already).
  `
  CREATE INDEX IF NOT EXISTS jobs_by_user_kind ON jobs (user_id, kind, started_at, id);
  -- CRC-32 of a chunk row's stored bytes, checked by \`buildlog check\` and at start (NULL: written before v3).
  ALTER TABLE chunks ADD COLUMN crc INTEGER;
  -- A packed (finished) log's rows are gzip members; \`size\` is the row's length once inflated.
  ALTER TABLE chunks ADD COLUMN size INTEGER;
  ALTER TABLE jobs ADD COLUMN packed INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
  CREATE INDEX jobs_by_status ON jobs (kind, status);
  `,
  // 4: when the status last changed, so that any node can end a graceful abort once its grace period is
  // over (issue 12). Unknown for older rows; an ABORTING one counts from its last activity, which is no
  // earlier than its abort.
  `
  ALTER TABLE jobs ADD COLUMN status_at INTEGER;
  UPDATE jobs SET status_at = active_at WHERE status = 'ABORTING';
  CREATE INDEX jobs_aborting ON jobs (status_at) WHERE status = 'ABORTING';
  `,
];

/** The version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS.length + 1;

/**
 * Makes sure `db` is a buildlog database at SCHEMA_VERSION: creates it when new, migrates an older one,
 * and refuses a foreign or newer file without touching it. Closes `db` when it throws.
 */
export function prepareSchema(db: Database.Database, file: string, isNew: boolean): void {
  try {
    const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
    const tableCount = (db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table'").get() as { n: number }).n;
    if (!hasMeta && tableCount > 0) {
      throw new StoreOpenError(`${file} belongs to another application (no buildlog metadata); refusing to use it`);
    }
    // Identify the file before creating anything in it: a foreign file must be left untouched.
    let app: { value: string } | undefined;
    if (hasMeta) {
      try {
        app = db.prepare("SELECT value FROM meta WHERE key = 'app'").get() as { value: string } | undefined;
      } catch {
        throw new StoreOpenError(`${file} belongs to another application (its meta table is not buildlog's); refusing to use it`);
      }
    }
    if (!app) {
      if (!isNew && tableCount > 0) throw new StoreOpenError(`${file} has no buildlog metadata; refusing to use it`);
      db.transaction(() => {
        db.exec(BASE_SCHEMA);
        db.prepare("INSERT INTO meta (key, value) VALUES ('app', ?), ('schema', '1')").run(APP_ID);
      })();
    } else if (app.value !== APP_ID) {
      throw new StoreOpenError(`${file} belongs to "${app.value}", not buildlog; refusing to use it`);
    }
    const schema = db.prepare("SELECT value FROM meta WHERE key = 'schema'").get() as { value: string } | undefined;
    const version = Number(schema?.value);
    if (!Number.isInteger(version) || version < 1 || version > SCHEMA_VERSION) {
      throw new StoreOpenError(`${file} has schema version ${schema?.value ?? 'none'}; this buildlog reads versions 1 to ${SCHEMA_VERSION}`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) {
      db.transaction(() => {
        db.exec(MIGRATIONS[v - 1]!);
        db.prepare("UPDATE meta SET value = ? WHERE key = 'schema'").run(String(v + 1));
      })();
    }
  } catch (err) {
    db.close();
    if (err instanceof StoreOpenError) throw err;
    throw new StoreOpenError(`${file} cannot be opened: ${(err as Error).message}`);
  }
}
