import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * The worker's code, a string evaluated as CommonJS: it is a dozen lines, and a module file would have to
 * be compiled through tsx in the worker whenever the server runs from TypeScript sources (the tests),
 * about a CPU-second per start.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
let reported = '';
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
    reported = '';
  } catch (err) {
    const message = String((err && err.message) || err);
    if (message !== reported) parentPort.postMessage(message);
    reported = message;
  }
}, workerData.everyMs);
parentPort.on('message', () => {
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

/**
 * Copies the write-ahead log into the database file from a connection of its own in a worker thread.
 * SQLite's automatic checkpoint runs inside the commit that fills the WAL past 1,000 pages, on the event
 * loop, and copies and fsyncs for tens of milliseconds: every follower's delivery waited meanwhile (the
 * fan-out tail). A PASSIVE checkpoint neither waits for nor blocks the writer. If the worker stops, the
 * store falls back to the automatic checkpoint (`fallBack`).
 */
export class Checkpointer {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #closing = false;

  constructor(file: string, onProblem: (message: string) => void, fallBack: () => void, everyMs = 250) {
    const sqlite = createRequire(import.meta.url).resolve('better-sqlite3');
    this.#worker = new Worker(WORKER, { eval: true, workerData: { file, sqlite, everyMs } });
    this.#worker.unref();
    this.#worker.on('message', (message: string) => onProblem(`WAL checkpoint failed: ${message}`));
    this.#worker.on('error', (err) => onProblem(`WAL checkpointer stopped: ${err.message}`));
    this.#exited = new Promise((resolve) =>
      this.#worker.once('exit', () => {
        if (!this.#closing) fallBack();
        resolve();
      }),
    );
  }

  async close(): Promise<void> {
    this.#closing = true;
    // Unreferenced while it runs (it must not keep a process alive), referenced while we wait for it to end.
    this.#worker.ref();
    this.#worker.postMessage('close');
    await this.#exited;
  }
}
