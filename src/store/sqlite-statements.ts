import type Database from 'better-sqlite3';

/** The embedded store's prepared statements (one set per connection). */
export function prepareStatements(db: Database.Database) {
  return {
    insertUser: db.prepare(
      'INSERT INTO users (id, username, token_hash, proxy_password, created_at) VALUES (?, ?, ?, ?, ?)',
    ),
    userByToken: db.prepare('SELECT * FROM users WHERE token_hash = ?'),
    userById: db.prepare('SELECT * FROM users WHERE id = ?'),
    userByName: db.prepare('SELECT * FROM users WHERE username = ?'),
    countUsers: db.prepare('SELECT count(*) AS n FROM users'),
    listUsers: db.prepare('SELECT * FROM users ORDER BY created_at, id'),
    insertJob: db.prepare(`INSERT INTO jobs (id, kind, user_id, act_id, build_id, build_number, status,
      status_message, exit_code, origin, meta, options, started_at, finished_at, active_at, status_at, log_crc)
      VALUES (@id, @kind, @userId, @actId, @buildId, @buildNumber, @status, @statusMessage, @exitCode,
      @origin, @meta, @options, @startedAt, @finishedAt, @startedAt, @startedAt, 0)`),
    getJob: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    updateStatus: db.prepare(`UPDATE jobs SET status = @status,
      status_message = CASE WHEN @setMessage THEN @statusMessage ELSE status_message END,
      exit_code = CASE WHEN @setExitCode THEN @exitCode ELSE exit_code END,
      finished_at = CASE WHEN @setFinishedAt THEN @finishedAt ELSE finished_at END,
      active_at = @now,
      status_at = CASE WHEN status = @status THEN status_at ELSE @now END
      WHERE id = @id AND status = @from`),
    staleJobs: db.prepare(`SELECT * FROM jobs WHERE status IN ('READY', 'RUNNING', 'ABORTING', 'TIMING-OUT')
      AND active_at < ? ORDER BY active_at LIMIT ?`),
    abortingSince: db.prepare("SELECT * FROM jobs WHERE status = 'ABORTING' AND status_at < ? ORDER BY status_at LIMIT ?"),
    latestJob: db.prepare(
      'SELECT * FROM jobs WHERE act_id = ? AND kind = ? ORDER BY started_at DESC LIMIT 1',
    ),
    userUsage: db.prepare(
      'SELECT count(*) AS jobs, coalesce(sum(log_length), 0) AS bytes FROM jobs WHERE user_id = ?',
    ),
    latestJobOfUser: db.prepare(
      'SELECT * FROM jobs WHERE act_id = ? AND kind = ? AND user_id = ? ORDER BY started_at DESC LIMIT 1',
    ),
    logRow: db.prepare('SELECT status, log_start, log_length, log_chars, log_crc, packed FROM jobs WHERE id = ?'),
    logState: db.prepare('SELECT kind, status, log_start AS start, log_length AS length FROM jobs WHERE id = ?'),
    saveLogRow: db.prepare(
      'UPDATE jobs SET log_start = ?, log_length = ?, log_chars = ?, log_crc = ?, active_at = ? WHERE id = ?',
    ),
    lastChunk: db.prepare(
      'SELECT offset, length(data) AS size, crc FROM chunks WHERE job_id = ? ORDER BY offset DESC LIMIT 1',
    ),
    insertChunk: db.prepare('INSERT INTO chunks (job_id, offset, data, crc) VALUES (?, ?, ?, ?)'),
    extendChunk: db.prepare('UPDATE chunks SET data = CAST(data || ? AS BLOB), crc = ? WHERE job_id = ? AND offset = ?'),
    packedFrom: db.prepare(
      'SELECT offset, size, data FROM chunks WHERE job_id = ? AND offset >= ? AND offset < ? ORDER BY offset',
    ),
    chunkAt: db.prepare(
      'SELECT max(offset) AS offset FROM chunks WHERE job_id = ? AND offset <= ?',
    ),
    chunksFrom: db.prepare(
      'SELECT offset, data, size FROM chunks WHERE job_id = ? AND offset >= ? AND offset < ? ORDER BY offset',
    ),
    chunkPage: db.prepare(
      'SELECT offset, data FROM chunks WHERE job_id = ? AND offset >= ? ORDER BY offset LIMIT ?',
    ),
    dropChunks: db.prepare('DELETE FROM chunks WHERE job_id = ? AND offset < ?'),
    unpack: db.prepare('UPDATE jobs SET packed = 0 WHERE id = ?'),
  };
}
