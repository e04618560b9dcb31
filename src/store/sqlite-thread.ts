import { createRequire } from 'node:module';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { SearchWorkerData } from './sqlite-search-worker.js';

/** The search indexer's module, run from TypeScript sources (tests, tsx) through tsx as we were. */
const INDEXER = new URL(`./sqlite-search-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

/**
 * The thread's code, a string evaluated as CommonJS: the checkpoint loop is a dozen lines, and a module
 * file would have to be compiled through tsx in the thread whenever the server runs from TypeScript
 * sources (the tests), about a CPU-second per start. The indexer's module is loaded only when an index is
 * wanted; it talks over a channel of its own, and a failure to start it is told on that channel.
 */
const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
let db = null;
let timer = null;
if (workerData.everyMs !== null) {
  const Database = require(workerData.sqlite);
  db = new Database(workerData.file, { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
  let reported = '';
  timer = setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
      reported = '';
    } catch (err) {
      const message = String((err && err.message) || err);
      if (message !== reported) parentPort.postMessage(message);
      reported = message;
    }
  }, workerData.everyMs);
}
let tsx = null;
parentPort.on('message', (msg) => {
  if (msg.type === 'index') {
    if (msg.tsx) tsx = tsx || import('tsx/esm/api').then(({ register }) => register());
    Promise.resolve(tsx)
      .then(() => import(msg.module))
      .then((indexer) => indexer.runIndexer(msg.port, msg.data))
      .catch((err) => {
        msg.port.postMessage({ type: 'failed', message: 'search indexer failed: ' + String((err && err.message) || err) });
        msg.port.close();
      });
  } else {
    clearInterval(timer);
    if (db) db.close();
    parentPort.close();
  }
});
`;

export interface StoreThreadOptions {
  /** The log database (buildlog.db). */
  file: string;
  /** Checkpoint the WAL this often; null: leave checkpoints to SQLite (the one-shot commands). */
  checkpointEveryMs: number | null;
  onProblem: (message: string) => void;
  /** Told when the thread starts and stops checkpointing: the store turns SQLite's own checkpoint off and on. */
  checkpointing: (running: boolean) => void;
}

/**
 * The SQLite store's background thread: it checkpoints the write-ahead log and runs the search indexer
 * (sqlite-search-worker.ts). One thread for both, since each thread is a V8 isolate and a Node
 * environment of its own, about 11 MB of RSS (measured: 4 workers that each open the database).
 *
 * Checkpoints: the thread copies the WAL into the database file from a connection of its own. SQLite's
 * automatic checkpoint runs inside the commit that fills the WAL past 1,000 pages, on the event loop, and
 * copies and fsyncs for tens of milliseconds: every follower's delivery waited meanwhile (the fan-out
 * tail). A PASSIVE checkpoint neither waits for nor blocks the writer. If the thread stops, the store falls
 * back to the automatic checkpoint until an indexer starts it again.
 */
export class StoreThread {
  #worker: Worker | null = null;
  #exited: Promise<void> = Promise.resolve();
  #closing = false;

  constructor(private readonly options: StoreThreadOptions) {
    if (options.checkpointEveryMs !== null) this.#start();
  }

  #start(): Worker {
    const { file, checkpointEveryMs, onProblem, checkpointing } = this.options;
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    const worker = new Worker(THREAD, { eval: true, workerData: { file, sqlite, everyMs: checkpointEveryMs } });
    // It must not keep a process alive by itself (an open indexer's channel does, until it is closed).
    worker.unref();
    worker.on('message', (message: string) => onProblem(`WAL checkpoint failed: ${message}`));
    worker.on('error', (err) => onProblem(`the store's background thread stopped: ${err.message}`));
    this.#exited = new Promise((resolve) =>
      worker.once('exit', () => {
        if (this.#worker === worker) this.#worker = null;
        if (checkpointEveryMs !== null && !this.#closing) checkpointing(false);
        resolve();
      }),
    );
    this.#worker = worker;
    if (checkpointEveryMs !== null) checkpointing(true);
    return worker;
  }

  /**
   * Starts a search indexer on the thread (and the thread, if it is not running); returns our end of
   * their channel, which closes when the indexer ends or the thread stops.
   */
  startIndexer(data: SearchWorkerData): MessagePort {
    if (this.#closing) throw new Error('the log store is closed');
    const { port1, port2 } = new MessageChannel();
    const worker = this.#worker ?? this.#start();
    worker.postMessage({ type: 'index', port: port2, data, module: INDEXER.href, tsx: INDEXER.pathname.endsWith('.ts') }, [port2]);
    return port1;
  }

  /** Stops the thread (close the indexer first). */
  async close(): Promise<void> {
    this.#closing = true;
    const worker = this.#worker;
    if (!worker) return;
    // Referenced while we wait for it to end.
    worker.ref();
    worker.postMessage({ type: 'close' });
    await this.#exited;
  }
}
