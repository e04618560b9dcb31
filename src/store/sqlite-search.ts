import type { MessagePort } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { JobRecord } from '../core/job.js';
import { blockMatches } from './search-text.js';
import type { FromWorker, SearchWorkerData, ToWorker } from './sqlite-search-worker.js';
import type { StoreThread } from './sqlite-thread.js';
import type { LogSearchHit, LogSearchPage, LogSearchQuery } from './store.js';

/** What answers need from the log store (read on the server's own connection, synchronously). */
export interface LogReader {
  job(id: string): JobRecord | null;
  logStart(id: string): number | null;
  read(id: string, from: number, to: number): Buffer;
}

/** How long a search waits for the indexer to catch up before it answers with what is indexed. */
const SYNC_WAIT_MS = 10_000;
/**
 * Changes are told to the indexer at most this often (a search tells it at once): each message wakes its
 * thread, and telling it after every append (500 a second in the fan-out bench) took the event loop more
 * CPU than any statement of the append, and the woken thread the other core.
 */
const CHANGES_EVERY_MS = 100;

interface BlockRow {
  job_id: string;
  offset: number;
  end: number;
  line: number;
  lines: number;
}

/**
 * The search side of the SQLite store: starts the indexer (sqlite-search-worker.ts) on the store's
 * background thread, tells it which jobs changed, and answers searches from its index plus the log bytes
 * themselves.
 */
export class SearchIndex {
  /** Our end of the channel to the running indexer. */
  #port: MessagePort | null = null;
  #ready: Promise<void> | null = null;
  #db: Database.Database | null = null;
  #stmt: { matches: Database.Statement; block: Database.Statement; first: Database.Statement } | null = null;
  #seq = 0;
  readonly #synced = new Map<number, () => void>();
  #changed = new Set<string>();
  #changesTimer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(
    readonly files: SearchWorkerData,
    readonly thread: StoreThread,
    readonly reader: LogReader,
    readonly onProblem: (message: string) => void,
  ) {}

  /** Starts the indexer (once); it catches up with everything logged while it did not run. */
  start(): Promise<void> {
    if (this.#ready) return this.#ready;
    let port: MessagePort;
    try {
      port = this.thread.startIndexer(this.files);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    this.#port = port;
    let started = false;
    this.#ready = new Promise<void>((resolve, reject) => {
      port.on('message', (msg: FromWorker) => {
        if (msg.type === 'ready') {
          started = true;
          this.#open();
          resolve();
        } else if (msg.type === 'synced') {
          this.#synced.get(msg.seq)?.();
        } else this.onProblem(msg.message);
      });
      port.on('close', () => {
        // A failed indexer is started again by the next search; waiting searches answer now.
        if (this.#port === port) this.#port = null;
        this.#ready = null;
        if (!started) reject(new Error('the search indexer did not start'));
        for (const done of this.#synced.values()) done();
      });
    });
    this.#ready.catch(() => undefined);
    return this.#ready;
  }

  #open(): void {
    if (this.#db) return;
    const db = new Database(this.files.indexFile, { readonly: true, fileMustExist: true });
    const matching = 'id IN (SELECT rowid FROM blocks_fts WHERE blocks_fts MATCH @match)';
    this.#stmt = {
      // The one full-text lookup of a search (for a common word it is most of the cost): every matching
      // block of the user, grouped and paged here.
      matches: db.prepare(`SELECT id, job_id, started_at FROM blocks WHERE user_id = @userId AND ${matching}`).raw(),
      block: db.prepare('SELECT job_id, offset, end, line, lines FROM blocks WHERE id = ?'),
      first: db.prepare('SELECT job_id, offset, end, line, lines FROM blocks WHERE job_id = ? ORDER BY offset LIMIT 1'),
    };
    this.#db = db;
  }

  /** A job's log or status changed, or it was deleted (sent in batches, every CHANGES_EVERY_MS). */
  changed(jobId: string): void {
    if (!this.#port || this.#closed) return;
    this.#changed.add(jobId);
    if (!this.#changesTimer) {
      this.#changesTimer = setTimeout(() => this.#sendChanges(), CHANGES_EVERY_MS);
      this.#changesTimer.unref();
    }
  }

  #sendChanges(): void {
    if (this.#changesTimer) clearTimeout(this.#changesTimer);
    this.#changesTimer = null;
    if (this.#changed.size === 0) return;
    const jobIds = [...this.#changed];
    this.#changed = new Set();
    this.#port?.postMessage({ type: 'changed', jobIds } satisfies ToWorker);
  }

  /** Resolves once everything changed before the call is indexed (or after `ms`). */
  async #sync(ms: number): Promise<void> {
    await this.start();
    const seq = ++this.#seq;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#synced.set(seq, done);
      // Changes not told yet go first (the worker takes messages in order); those of this turn too.
      setImmediate(() => {
        this.#sendChanges();
        this.#port?.postMessage({ type: 'sync', seq } satisfies ToWorker);
      });
    }).finally(() => this.#synced.delete(seq));
  }

  async search(q: LogSearchQuery): Promise<LogSearchPage> {
    await this.#sync(SYNC_WAIT_MS);
    const stmt = this.#stmt!;
    const match = `"${q.text.replaceAll('"', '""')}"`;
    const jobs = new Map<string, { startedAt: number; blockIds: number[] }>();
    for (const [blockId, jobId, startedAt] of stmt.matches.all({ userId: q.userId, match }) as [number, string, number][]) {
      const job = jobs.get(jobId);
      if (job) job.blockIds.push(blockId);
      else jobs.set(jobId, { startedAt, blockIds: [blockId] });
    }
    const newestFirst = [...jobs].sort(([a, x], [b, y]) => y.startedAt - x.startedAt || (a < b ? 1 : a > b ? -1 : 0));
    const hits: LogSearchHit[] = [];
    for (const [id, { blockIds }] of newestFirst.slice(q.offset, q.offset + q.limit)) {
      // (A block the indexer replaced meanwhile is simply gone.)
      const blocks = blockIds
        .map((b) => stmt.block.get(b) as BlockRow | undefined)
        .filter((b) => b !== undefined)
        .sort((a, b) => a.offset - b.offset);
      const hit = await this.#hit(id, blocks, q.text.toLowerCase(), q.linesPerJob);
      if (hit) hits.push(hit);
    }
    return { total: jobs.size, hits };
  }

  /** The matching lines of one job, numbered as the viewer numbers the retained log; null if it is gone. */
  async #hit(id: string, blocks: BlockRow[], needle: string, max: number): Promise<LogSearchHit | null> {
    const job = this.reader.job(id);
    const start = this.reader.logStart(id);
    const first = this.#stmt!.first.get(id) as BlockRow | undefined;
    if (!job || start === null || !first) return null;
    const lines = await blockMatches(blocks, first, start, needle, max, (from, to) => this.reader.read(id, from, to));
    if (lines.length === 0) return null;
    return { job, lines: lines.slice(0, max), moreLines: lines.length > max };
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#sendChanges();
    const port = this.#port;
    this.#port = null;
    if (port) {
      const ended = new Promise((resolve) => port.once('close', resolve));
      port.postMessage({ type: 'close' } satisfies ToWorker);
      await ended;
    }
    this.#db?.close();
  }
}
