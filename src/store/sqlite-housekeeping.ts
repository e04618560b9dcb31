import { statfsSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { StoreUnavailableError } from './errors.js';
import { TERMINAL_SQL } from './rows.js';
import type { JobCount } from './store.js';

/** Below this much free space on its filesystem the store reports itself unwritable (readiness). */
const MIN_FREE_BYTES = 64 * 1024;

/**
 * What operations ask of the database (counts for the metrics, expiry's lookup, the readiness probe,
 * usage for the disk guard), kept apart from the append and read paths in sqlite.ts.
 */
export class Housekeeping {
  readonly #stmt;

  constructor(
    private readonly db: Database.Database,
    private readonly dataDir: string,
  ) {
    this.#stmt = {
      jobCounts: db.prepare('SELECT kind, status, count(*) AS count FROM jobs GROUP BY kind, status'),
      finishedBefore: db.prepare(
        // The status too, though only a terminal status sets finished_at: an unfinished job must never expire.
        `SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ? AND status IN ${TERMINAL_SQL}
         ORDER BY finished_at LIMIT ?`,
      ),
      probe: db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('probe', ?)"),
    };
  }

  jobCounts(): JobCount[] {
    return this.#stmt.jobCounts.all() as JobCount[];
  }

  finishedBefore(finishedBefore: number, limit: number): string[] {
    return (this.#stmt.finishedBefore.all(finishedBefore, limit) as { id: string }[]).map((r) => r.id);
  }

  /** A one-row write (a one-row write can succeed on a full disk, as SQLite reuses its WAL: free space is checked too). */
  probe(): void {
    const fs = statfsSync(this.dataDir);
    const free = fs.bavail * fs.bsize;
    if (free < MIN_FREE_BYTES) {
      throw new StoreUnavailableError(`The log store is unavailable: the disk is full (${free} bytes free in ${this.dataDir}).`);
    }
    this.#stmt.probe.run(String(Date.now()));
  }

  /** Pages in use (as of the last commit, WAL included); the WAL file itself, bounded by checkpoints, is not counted. */
  diskUsage(): number {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const free = this.db.pragma('freelist_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    return (pages - free) * pageSize;
  }
}
