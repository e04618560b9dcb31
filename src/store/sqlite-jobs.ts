import type Database from 'better-sqlite3';
import type { JobListQuery, JobPage } from './store.js';
import { toJob, type JobRow } from './rows.js';

/**
 * Finding and removing jobs: the paged lists, an actor's build numbers, deletion. Kept apart from the
 * append path in sqlite.ts; every statement here is a plain read or one short transaction.
 */
export class JobQueries {
  readonly #db: Database.Database;
  /** Prepared statements by query shape (with or without actor, number of statuses, order). */
  readonly #lists = new Map<string, { count: Database.Statement; page: Database.Statement }>();
  readonly #buildNumbers: Database.Statement;
  readonly #remove: (jobId: string) => boolean;

  constructor(db: Database.Database) {
    this.#db = db;
    this.#buildNumbers = db.prepare(
      `SELECT DISTINCT build_number AS n FROM jobs
       WHERE user_id = ? AND act_id = ? AND kind = 'build' AND build_number IS NOT NULL ORDER BY n`,
    );
    const dropChunks = db.prepare('DELETE FROM chunks WHERE job_id = ?');
    const dropJob = db.prepare('DELETE FROM jobs WHERE id = ?');
    this.#remove = db.transaction((jobId: string) => {
      dropChunks.run(jobId);
      return dropJob.run(jobId).changes > 0;
    });
  }

  /** The job row and its chunks go in one transaction (an append queued meanwhile finds no job: `not-found`). */
  deleteJob(jobId: string): boolean {
    return this.#remove(jobId);
  }

  list(q: JobListQuery): JobPage {
    const statuses = q.statuses ?? [];
    const key = `${q.actId !== undefined ? 'a' : ''}${statuses.length}${q.desc ? 'd' : 'a'}`;
    let stmts = this.#lists.get(key);
    if (!stmts) {
      const where = [
        'user_id = @userId',
        'kind = @kind',
        ...(q.actId !== undefined ? ['act_id = @actId'] : []),
        ...(statuses.length ? [`status IN (${statuses.map((_, i) => `@s${i}`).join(', ')})`] : []),
      ].join(' AND ');
      const dir = q.desc ? 'DESC' : 'ASC';
      stmts = {
        count: this.#db.prepare(`SELECT count(*) AS n FROM jobs WHERE ${where}`),
        page: this.#db.prepare(`SELECT * FROM jobs WHERE ${where} ORDER BY started_at ${dir}, id ${dir} LIMIT @limit OFFSET @offset`),
      };
      this.#lists.set(key, stmts);
    }
    const params: Record<string, unknown> = { userId: q.userId, kind: q.kind, limit: q.limit, offset: q.offset };
    if (q.actId !== undefined) params.actId = q.actId;
    statuses.forEach((s, i) => (params[`s${i}`] = s));
    // One read transaction: the total and the page describe the same moment.
    return this.#db.transaction(() => {
      const total = (stmts.count.get(params) as { n: number }).n;
      const items = (stmts.page.all(params) as JobRow[]).map(toJob);
      return { total, items };
    })();
  }

  buildNumbers(userId: string, actId: string): string[] {
    return (this.#buildNumbers.all(userId, actId) as { n: string }[]).map((r) => r.n);
  }
}
