/** The tables of buildlog.db, newest version (created on a new file; `CREATE ... IF NOT EXISTS` again on every open). */
export const SCHEMA = `
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
  -- CRC-32 of every byte ever appended (zlib's), kept as bytes arrive; NULL for logs older than it.
  log_crc INTEGER,
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
