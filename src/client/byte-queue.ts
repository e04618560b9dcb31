import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ByteQueueOptions {
  /** Bytes held in memory before new bytes go to a spill file on disk. */
  memoryLimit?: number;
  /** Where the spill file is created (default: the OS temp dir). */
  spillDir?: string;
}

/**
 * A FIFO of bytes not yet acknowledged by the server: in memory up to a bound, then in a spill file, so
 * a long outage neither loses output nor grows the heap without limit. The head can be read (`peek`)
 * several times before it is dropped (`consume`), which is what a retried upload needs.
 *
 * Order invariant: every byte in memory is older than every byte in the file. So once bytes go to the
 * file, new bytes follow them there until the file has been read back completely.
 */
export class ByteQueue {
  readonly #memoryLimit: number;
  readonly #spillDir: string;
  #chunks: Buffer[] = [];
  #memBytes = 0;
  #fd: number | null = null;
  #fileRead = 0;
  #fileWrite = 0;
  /** Total bytes ever spilled (for messages and tests). */
  spilledBytes = 0;

  constructor(options: ByteQueueOptions = {}) {
    this.#memoryLimit = Math.max(options.memoryLimit ?? 32 * 1024 * 1024, 1);
    this.#spillDir = options.spillDir ?? tmpdir();
  }

  /** Bytes queued, in memory and on disk. */
  get length(): number {
    return this.#memBytes + this.#fileWrite - this.#fileRead;
  }

  get onDisk(): number {
    return this.#fileWrite - this.#fileRead;
  }

  push(data: Buffer): void {
    if (data.length === 0) return;
    if (this.onDisk === 0 && this.#memBytes + data.length <= this.#memoryLimit) {
      this.#chunks.push(data);
      this.#memBytes += data.length;
      return;
    }
    const fd = this.#file();
    let written = 0;
    while (written < data.length) written += writeSync(fd, data, written, data.length - written, this.#fileWrite + written);
    this.#fileWrite += data.length;
    this.spilledBytes += data.length;
  }

  /**
   * Up to `max` bytes from the head, without removing them: views of the queued buffers, not a copy
   * (a request body written part by part costs less than one concatenated first).
   */
  peek(max: number): Buffer[] {
    if (this.#memBytes === 0) this.#refill();
    const parts: Buffer[] = [];
    let size = 0;
    for (const c of this.#chunks) {
      if (size >= max) break;
      const part = c.length > max - size ? c.subarray(0, max - size) : c;
      parts.push(part);
      size += part.length;
    }
    return parts;
  }

  /** Drops `n` bytes from the head (they were acknowledged). */
  consume(n: number): void {
    let left = Math.min(n, this.length);
    while (left > 0) {
      if (this.#memBytes === 0) this.#refill();
      const first = this.#chunks[0]!;
      if (first.length <= left) {
        this.#chunks.shift();
        this.#memBytes -= first.length;
        left -= first.length;
      } else {
        this.#chunks[0] = first.subarray(left);
        this.#memBytes -= left;
        left = 0;
      }
    }
    // Keep memory topped up so that reads from disk are large and few.
    if (this.#memBytes < this.#memoryLimit / 2) this.#refill();
  }

  /** Drops everything (the log cannot take more bytes). */
  clear(): void {
    this.#chunks = [];
    this.#memBytes = 0;
    this.#fileRead = this.#fileWrite = 0;
    if (this.#fd !== null) ftruncateSync(this.#fd, 0);
  }

  close(): void {
    this.#chunks = [];
    this.#memBytes = 0;
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
    this.#fileRead = this.#fileWrite = 0;
  }

  /** Moves the oldest spilled bytes back into memory, up to the memory bound. */
  #refill(): void {
    const available = this.onDisk;
    if (available === 0 || this.#fd === null) return;
    const size = Math.min(available, Math.max(this.#memoryLimit - this.#memBytes, 64 * 1024));
    const buf = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(this.#fd, buf, got, size - got, this.#fileRead + got);
      if (n === 0) throw new Error('spill file is shorter than expected');
      got += n;
    }
    this.#fileRead += size;
    this.#chunks.push(buf);
    this.#memBytes += size;
    if (this.#fileRead === this.#fileWrite) {
      // Read back completely: start the file over so it does not grow for the whole run.
      this.#fileRead = this.#fileWrite = 0;
      ftruncateSync(this.#fd, 0);
    }
  }

  /** The spill file, created on first use and unlinked at once so that it goes away even after a crash. */
  #file(): number {
    if (this.#fd === null) {
      const dir = mkdtempSync(join(this.#spillDir, 'buildlog-spill-'));
      const path = join(dir, 'pending.log');
      this.#fd = openSync(path, 'w+', 0o600);
      rmSync(dir, { recursive: true, force: true });
    }
    return this.#fd;
  }
}
