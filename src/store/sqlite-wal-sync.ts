import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Flushes a file's data to disk (fdatasync). */
export type DataSync = (file: FileHandle) => Promise<void>;

interface Waiter {
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Flushes the SQLite write-ahead log to disk off the event loop. The store commits with
 * synchronous=NORMAL, so a commit only writes the WAL (into the page cache: safe from a crash of the
 * server, readable at once); durability against power loss is this fdatasync of the WAL file, run on
 * libuv's thread pool. With synchronous=FULL SQLite would fsync inside every commit, on the event loop,
 * and a slow disk (milliseconds, at times a hundred) would hold up every reader and follower meanwhile.
 *
 * One flush runs at a time; `flush()` resolves once a flush that started after the call has completed,
 * so it covers every commit made before the call. Callers that arrive while one runs share the next
 * one (group commit of the fsync).
 */
export class WalSync {
  #file: FileHandle | null = null;
  #running: Promise<void> | null = null;
  #waiting: Waiter[] = [];
  #closed = false;

  constructor(
    private readonly walFile: string,
    private readonly dataSync: DataSync = (file) => file.datasync(),
  ) {}

  /** Resolves once everything written to the WAL before the call is on disk; rejects with the flush's error. */
  flush(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('store is closed'));
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#start();
    });
  }

  #start(): void {
    if (this.#running || this.#waiting.length === 0) return;
    const batch = this.#waiting;
    this.#waiting = [];
    this.#running = this.#syncOnce()
      .then(
        () => batch.forEach((w) => w.resolve()),
        (err: unknown) => batch.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.#running = null;
        this.#start();
      });
  }

  async #syncOnce(): Promise<void> {
    // The WAL exists once the first commit wrote it; its directory entry is flushed once, with the first flush.
    if (!this.#file) {
      const file = await open(this.walFile, 'r');
      try {
        const dir = await open(dirname(this.walFile), 'r');
        await dir.sync().finally(() => dir.close());
      } catch (err) {
        await file.close();
        throw err;
      }
      this.#file = file;
    }
    await this.dataSync(this.#file);
  }

  /** Waits for the flushes under way and queued, then releases the file. */
  async close(): Promise<void> {
    while (this.#running) await this.#running;
    this.#closed = true;
    await this.#file?.close();
    this.#file = null;
  }
}
