import pg from 'pg';
import { isTerminal, type JobRecord, type JobStatus, type StatusPatch } from '../core/job.js';
import { StoreOpenError } from './errors.js';
import { storeFault, types } from './postgres-connection.js';
import { appendBatch, importLog, type LogRow, type PendingAppend } from './postgres-append.js';
import { migrate } from './postgres-schema.js';
import { packLog, verifyLogs } from './postgres-upkeep.js';
import { indexLastLine, indexOneJob, type SearchState } from './postgres-search-index.js';
import { searchLogs } from './postgres-search.js';
import { TERMINAL_SQL, toJob, toUser, type JobRow, type UserRow } from './rows.js';
import type { AppendResult, ImportedLog, JobListQuery, JobPage, LogChecksum, LogInfo, LogState, LogSearchPage, LogSearchQuery, LogSlice, Store, UserRecord } from './store.js';

export interface PostgresStoreOptions {
  /** postgres://… */
  url: string;
  /** The schema holding buildlog's tables (created if missing); `public` by default. */
  schema?: string;
  retentionChars: number;
  /** Connections this node keeps at most. */
  maxConnections?: number;
  /** Told the duration of every group commit (the metrics). */
  onCommit?: (seconds: number) => void;
  /**
   * Index logs for search from the start (the server): new jobs are indexed as they are written, older ones
   * in the background. Otherwise (the one-shot commands, `--search-index-lazy`) new jobs are left to the
   * catch-up, which the first search starts.
   */
  indexLogs?: boolean;
  /** Where problems of the search index are reported. */
  onProblem?: (message: string) => void;
}

/**
 * The scale-out store: users, jobs and logs in PostgreSQL, shared by every node. A log is rows of bytes
 * that are never rewritten; retention deletes whole rows and moves the window's start. Appends that
 * arrive while a commit is under way are committed together in the next one (group commit per node);
 * appends to one log from several nodes are serialised by locking the job's row, so they never
 * interleave and an `X-Log-Offset` check sees the length the append will land at.
 */
export class PostgresStore implements Store {
  readonly #pool: pg.Pool;
  readonly #retentionChars: number;
  readonly #onCommit: ((seconds: number) => void) | undefined;
  readonly #onProblem: (message: string) => void;
  /** Search has its trigram index (the pg_trgm extension is there); otherwise searches read the logs. */
  readonly #searchIndex: boolean;
  /** New jobs are indexed as they are written. */
  #indexNewJobs: boolean;
  /** The background indexing of jobs that have no index yet, while it runs. */
  #catchingUp: Promise<void> | null = null;
  #queue: PendingAppend[] = [];
  /** The commit loop while it runs. */
  #flushing: Promise<void> | null = null;
  /** Background packs of logs that just finished. */
  readonly #packing = new Set<Promise<boolean>>();
  #closed = false;

  private constructor(pool: pg.Pool, options: PostgresStoreOptions, searchIndex: boolean) {
    this.#pool = pool;
    this.#retentionChars = options.retentionChars;
    this.#onCommit = options.onCommit;
    this.#onProblem = options.onProblem ?? (() => undefined);
    this.#searchIndex = searchIndex;
    this.#indexNewJobs = searchIndex && options.indexLogs === true;
    if (this.#indexNewJobs) this.#catchUp();
  }

  /** Connects, migrates (once, however many nodes start at once) and returns the store. */
  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new StoreOpenError(`"${schema}" is not a usable schema name (lower-case letters, digits, _)`);
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.maxConnections ?? 10,
      types,
      options: `-c search_path=${schema}`,
      application_name: 'buildlog',
    });
    // An idle connection that breaks is reported here; the pool replaces it on the next query.
    pool.on('error', () => undefined);
    const where = `PostgreSQL schema "${schema}"`;
    let search: Awaited<ReturnType<typeof migrate>>;
    try {
      const client = await pool.connect();
      try {
        search = await migrate(client, schema, where);
      } finally {
        client.release();
      }
    } catch (err) {
      await pool.end().catch(() => undefined);
      if (err instanceof StoreOpenError) throw err;
      throw new StoreOpenError(`${where} cannot be used: ${(err as Error).message}`);
    }
    if (!search.ok) {
      options.onProblem?.(`search: no index (the pg_trgm extension cannot be created: ${search.reason}); searches read the logs instead`);
    }
    return new PostgresStore(pool, options, search.ok);
  }

  async #query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(text, values);
    } catch (err) {
      throw storeFault(err);
    }
  }

  /** Runs `work` in one transaction on one connection. */
  async #transaction<T>(work: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storeFault(err);
    }
    try {
      await client.query(begin);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw storeFault(err);
    } finally {
      client.release();
    }
  }

  async createUser(user: UserRecord): Promise<void> {
    await this.#query('INSERT INTO users (id, username, token_hash, proxy_password, created_at) VALUES ($1, $2, $3, $4, $5)', [
      user.id,
      user.username,
      user.tokenHash,
      user.proxyPassword,
      user.createdAt,
    ]);
  }

  async #user(column: 'token_hash' | 'id' | 'username', value: string): Promise<UserRecord | null> {
    const row = (await this.#query<UserRow>(`SELECT * FROM users WHERE ${column} = $1`, [value])).rows[0];
    return row ? toUser(row) : null;
  }

  userByTokenHash(tokenHash: string): Promise<UserRecord | null> {
    return this.#user('token_hash', tokenHash);
  }

  userById(id: string): Promise<UserRecord | null> {
    return this.#user('id', id);
  }

  userByName(username: string): Promise<UserRecord | null> {
    return this.#user('username', username);
  }

  async countUsers(): Promise<number> {
    return Number((await this.#query<{ n: number }>('SELECT count(*) AS n FROM users')).rows[0]!.n);
  }

  async listUsers(): Promise<UserRecord[]> {
    return (await this.#query<UserRow>('SELECT * FROM users ORDER BY created_at, id')).rows.map(toUser);
  }

  async createJob(job: JobRecord): Promise<void> {
    await this.#query(
      `INSERT INTO jobs (id, kind, user_id, act_id, build_id, build_number, status, status_message, exit_code, origin,
        meta, options, started_at, finished_at, active_at, status_at, log_crc, search_to)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $13, $13, 0, $15::bigint)`,
      [
        job.id,
        job.kind,
        job.userId,
        job.actId,
        job.buildId,
        job.buildNumber,
        job.status,
        job.statusMessage,
        job.exitCode,
        job.origin,
        JSON.stringify(job.meta),
        JSON.stringify(job.options),
        job.startedAt,
        job.finishedAt,
        this.#indexNewJobs ? 0 : null,
      ],
    );
  }

  async getJob(id: string): Promise<JobRecord | null> {
    const row = (await this.#query<JobRow>('SELECT * FROM jobs WHERE id = $1', [id])).rows[0];
    return row ? toJob(row) : null;
  }

  async updateJobStatus(id: string, from: JobStatus, patch: StatusPatch): Promise<JobRecord | null> {
    const update = `UPDATE jobs SET status = $3,
        status_message = CASE WHEN $4 THEN $5 ELSE status_message END,
        exit_code = CASE WHEN $6 THEN $7::integer ELSE exit_code END,
        finished_at = CASE WHEN $8 THEN $9::bigint ELSE finished_at END,
        active_at = $10,
        status_at = CASE WHEN status = $3 THEN status_at ELSE $10 END
      WHERE id = $1 AND status = $2 RETURNING *`;
    const values = [
      id,
      from,
      patch.status,
      patch.statusMessage !== undefined,
      patch.statusMessage ?? null,
      patch.exitCode !== undefined,
      patch.exitCode ?? null,
      patch.finishedAt !== undefined,
      patch.finishedAt ?? null,
      Date.now(),
    ];
    type Row = JobRow & SearchState & { log_start: number; log_length: number };
    if (!isTerminal(patch.status)) {
      const row = (await this.#query<Row>(update, values)).rows[0];
      return row ? toJob(row) : null;
    }
    // A finished log's last line counts without a newline: indexed with the status that finishes it.
    const row = await this.#transaction(async (c) => {
      const changed = (await c.query<Row>(update, values)).rows[0];
      if (changed) await indexLastLine(c, changed);
      return changed;
    });
    if (!row) return null;
    this.#packSoon(id);
    return toJob(row);
  }

  async importLog(jobId: string, log: ImportedLog): Promise<void> {
    if (this.#closed) throw new Error('store is closed');
    const status = await this.#transaction((c) => importLog(c, jobId, log, this.#retentionChars));
    if (isTerminal(status)) this.#packSoon(jobId);
  }

  /** Packs a log that just finished, in the background (packFinishedLogs catches any this misses). */
  #packSoon(id: string): void {
    if (this.#closed) return;
    const packing = this.#pack(id)
      .catch(() => false)
      .finally(() => this.#packing.delete(packing));
    this.#packing.add(packing);
  }

  async latestJob(actId: string, kind: 'build' | 'run', userId?: string): Promise<JobRecord | null> {
    const row = (
      await this.#query<JobRow>(
        `SELECT * FROM jobs WHERE act_id = $1 AND kind = $2 ${userId !== undefined ? 'AND user_id = $3' : ''} ORDER BY started_at DESC LIMIT 1`,
        userId !== undefined ? [actId, kind, userId] : [actId, kind],
      )
    ).rows[0];
    return row ? toJob(row) : null;
  }

  async staleJobs(activeBefore: number, limit: number): Promise<JobRecord[]> {
    const rows = await this.#query<JobRow>(
      `SELECT * FROM jobs WHERE status IN ('READY', 'RUNNING', 'ABORTING', 'TIMING-OUT') AND active_at < $1 ORDER BY active_at LIMIT $2`,
      [activeBefore, limit],
    );
    return rows.rows.map(toJob);
  }

  async abortingSince(changedBefore: number, limit: number): Promise<JobRecord[]> {
    const rows = await this.#query<JobRow>(
      "SELECT * FROM jobs WHERE status = 'ABORTING' AND status_at < $1 ORDER BY status_at LIMIT $2",
      [changedBefore, limit],
    );
    return rows.rows.map(toJob);
  }

  async listJobs(q: JobListQuery): Promise<JobPage> {
    const values: unknown[] = [q.userId, q.kind];
    const where = ['user_id = $1', 'kind = $2'];
    if (q.actId !== undefined) where.push(`act_id = $${values.push(q.actId)}`);
    if (q.statuses?.length) where.push(`status = ANY($${values.push([...q.statuses])})`);
    const dir = q.desc ? 'DESC' : 'ASC';
    // One statement: the total and the page describe the same moment.
    const rows = await this.#query<JobRow & { total: number }>(
      `SELECT *, count(*) OVER () AS total FROM jobs WHERE ${where.join(' AND ')}
       ORDER BY started_at ${dir}, id ${dir} LIMIT $${values.push(q.limit)} OFFSET $${values.push(q.offset)}`,
      values,
    );
    let total = rows.rows[0]?.total;
    if (total === undefined) {
      // The page is past the end (or there is nothing): count separately.
      total = Number((await this.#query<{ n: number }>(`SELECT count(*) AS n FROM jobs WHERE ${where.join(' AND ')}`, values.slice(0, -2))).rows[0]!.n);
    }
    return { total: Number(total), items: rows.rows.map(toJob) };
  }

  async buildNumbers(userId: string, actId: string): Promise<string[]> {
    const rows = await this.#query<{ n: string }>(
      `SELECT DISTINCT build_number AS n FROM jobs WHERE user_id = $1 AND act_id = $2 AND kind = 'build' AND build_number IS NOT NULL ORDER BY n`,
      [userId, actId],
    );
    return rows.rows.map((r) => r.n);
  }

  deleteJob(id: string): Promise<boolean> {
    // The job's row is locked first, as appends lock it: an append committing meanwhile is either whole
    // before the delete or finds no job.
    return this.#transaction(async (c) => {
      const found = await c.query('SELECT 1 FROM jobs WHERE id = $1 FOR UPDATE', [id]);
      if (found.rowCount === 0) return false;
      await c.query('DELETE FROM chunks WHERE job_id = $1', [id]);
      await c.query('DELETE FROM search_blocks WHERE job_id = $1', [id]);
      await c.query('DELETE FROM jobs WHERE id = $1', [id]);
      return true;
    });
  }

  /** One snapshot: the index, the logs not indexed yet and the lines read back agree. */
  searchLogs(query: LogSearchQuery): Promise<LogSearchPage> {
    if (this.#searchIndex) {
      // The first search ends the laziness: from now on this node indexes what it writes. Each search also
      // has the jobs left unindexed (by commands, or a failed catch-up) indexed for the next ones.
      this.#indexNewJobs = true;
      this.#catchUp();
    }
    return this.#transaction((c) => searchLogs(c, query, this.#searchIndex), 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  /** Indexes the jobs that have no index yet (every node does, each taking other jobs), in the background. */
  #catchUp(): void {
    if (this.#catchingUp || this.#closed) return;
    this.#catchingUp = (async () => {
      while (!this.#closed && (await this.#transaction(indexOneJob))) {
        // One job per transaction: its row is locked (appends to it wait) only while it is indexed.
      }
    })()
      .catch((err: unknown) => this.#onProblem(`search: indexing logs that have no index yet failed (the next search retries): ${(err as Error).message}`))
      .finally(() => (this.#catchingUp = null));
  }

  async userUsage(userId: string): Promise<{ jobs: number; bytes: number }> {
    const row = (await this.#query<{ jobs: number; bytes: number }>(
      'SELECT count(*) AS jobs, coalesce(sum(log_length), 0)::bigint AS bytes FROM jobs WHERE user_id = $1',
      [userId],
    )).rows[0]!;
    return { jobs: Number(row.jobs), bytes: Number(row.bytes) };
  }

  append(jobId: string, data: Buffer, expectedOffset?: number, committed?: (r: AppendResult) => void): Promise<AppendResult> {
    if (this.#closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.#queue.push({ jobId, data, expectedOffset, committed, resolve, reject });
      this.#startFlushing();
    });
  }

  #startFlushing(): void {
    if (this.#flushing) return;
    this.#flushing = this.#flush().finally(() => {
      this.#flushing = null;
      // Queued after the loop saw an empty queue, before this ran.
      if (this.#queue.length) this.#startFlushing();
    });
  }

  /** Commits what is queued, then what queued up meanwhile, until the queue is empty (one commit at a time). */
  async #flush(): Promise<void> {
    while (this.#queue.length) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        const started = this.#onCommit ? performance.now() : 0;
        const results = await this.#transaction((c) => appendBatch(c, batch, this.#retentionChars));
        this.#onCommit?.((performance.now() - started) / 1000);
        // A commit here is durable: readable and acknowledged at once.
        batch.forEach((p, i) => {
          try {
            p.committed?.(results[i]!);
            p.resolve(results[i]!);
          } catch (err) {
            p.reject(err);
          }
        });
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
  }

  async logInfo(jobId: string): Promise<LogInfo | null> {
    const row = (await this.#query<LogRow>('SELECT log_start, log_length FROM jobs WHERE id = $1', [jobId])).rows[0];
    return row ? { start: row.log_start, length: row.log_length } : null;
  }

  async logState(jobId: string): Promise<LogState | null> {
    const sql = 'SELECT kind, status, log_start AS start, log_length AS length FROM jobs WHERE id = $1';
    return (await this.#query<LogState>(sql, [jobId])).rows[0] ?? null;
  }

  async logChecksum(jobId: string): Promise<LogChecksum | null> {
    const row = (await this.#query<LogRow>('SELECT log_length, log_crc FROM jobs WHERE id = $1', [jobId])).rows[0];
    return row ? { length: row.log_length, crc32: row.log_crc } : null;
  }

  async readLog(jobId: string, from: number, maxBytes: number): Promise<LogSlice | null> {
    // One statement, so that the window and the bytes are of the same moment (retention may run meanwhile).
    const rows = (
      await this.#query<{ log_start: number; log_length: number; offset: number | null; data: Buffer | null }>(
        `WITH j AS (SELECT log_start, log_length, LEAST(GREATEST($2::bigint, log_start), log_length) AS a FROM jobs WHERE id = $1)
         SELECT j.log_start, j.log_length, c."offset", c.data FROM j
         LEFT JOIN chunks c ON c.job_id = $1 AND c."offset" < LEAST(j.log_length, j.a + $3::bigint) AND c."offset" + length(c.data) > j.a
         ORDER BY c."offset"`,
        [jobId, from, maxBytes],
      )
    ).rows;
    const head = rows[0];
    if (!head) return null;
    const start = Math.min(Math.max(from, head.log_start), head.log_length);
    const end = Math.min(head.log_length, start + maxBytes);
    const parts = rows
      .filter((r) => r.data !== null)
      .map((r) => r.data!.subarray(Math.max(0, start - r.offset!), Math.min(r.data!.length, end - r.offset!)));
    const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    return { start, end, data };
  }

  async jobCounts(): Promise<{ kind: JobRecord['kind']; status: JobStatus; count: number }[]> {
    const rows = await this.#query<{ kind: JobRecord['kind']; status: JobStatus; count: number }>(
      'SELECT kind, status, count(*) AS count FROM jobs GROUP BY kind, status',
    );
    return rows.rows.map((r) => ({ kind: r.kind, status: r.status, count: Number(r.count) }));
  }

  async finishedBefore(finishedBefore: number, limit: number): Promise<string[]> {
    const rows = await this.#query<{ id: string }>(
      `SELECT id FROM jobs WHERE finished_at < $1 AND status IN ${TERMINAL_SQL} ORDER BY finished_at, id LIMIT $2`,
      [finishedBefore, limit],
    );
    return rows.rows.map((r) => r.id);
  }

  async probe(): Promise<void> {
    // A write that changes nothing lasting: proves a connection, a writable primary and a usable schema.
    await this.#query("INSERT INTO meta (key, value) VALUES ('probe', $1) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", [String(Date.now())]);
  }

  async diskUsage(): Promise<number> {
    const row = (await this.#query<{ bytes: number }>(
      `SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'`,
    )).rows[0]!;
    return Number(row.bytes);
  }

  /**
   * Space freed by deletions is reused by PostgreSQL itself (autovacuum); handing it back to the
   * filesystem needs VACUUM FULL, which locks the table for every node, so it is left to the operator.
   */
  async reclaimSpace(): Promise<number> {
    return 0;
  }

  /**
   * Merges each finished log's rows into rows of up to PACKED_ROW bytes, which PostgreSQL compresses
   * (TOAST): a log appended line by line no longer costs a row and an index entry per commit.
   */
  async packFinishedLogs(): Promise<number> {
    // Background packs under way count too (they would otherwise hold the rows this pass wants).
    let packed = (await Promise.all(this.#packing)).filter(Boolean).length;
    for (;;) {
      const ids = (await this.#query<{ id: string }>(
        `SELECT id FROM jobs WHERE NOT packed AND finished_at IS NOT NULL AND status IN ${TERMINAL_SQL} LIMIT 100`,
      )).rows.map((r) => r.id);
      if (ids.length === 0) return packed;
      for (const id of ids) if (await this.#pack(id)) packed++;
    }
  }

  #pack(jobId: string): Promise<boolean> {
    return this.#transaction((c) => packLog(c, jobId));
  }

  /** `quick`: every log's rows cover its window; `full` also checks never-trimmed logs against their CRC-32. */
  verify(level: 'quick' | 'full'): Promise<string[]> {
    return verifyLogs(this.#pool, level, (id, from, max) => this.readLog(id, from, max)).catch((err) => {
      throw storeFault(err);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Appends already accepted are committed before the connections go.
    while (this.#flushing) await this.#flushing;
    await Promise.all(this.#packing);
    await this.#catchingUp;
    await this.#pool.end();
  }
}
