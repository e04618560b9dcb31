import { crc32 } from 'node:zlib';
import { ErrorResponse, type BuildlogApi, isRetryable, isTerminal, type JobKind } from './api.js';
import { Backoff, sleep } from './backoff.js';
import { ByteQueue, type ByteQueueOptions } from './byte-queue.js';

export interface AppenderOptions extends ByteQueueOptions {
  api: BuildlogApi;
  kind: JobKind;
  jobId: string;
  /** How long the first bytes of a batch wait for more before they are sent (the latency bound is this + one request). */
  lingerMs?: number;
  /**
   * Least time between the starts of two requests, so that a steady trickle of lines does not become
   * one request per line (the server allows 60 requests/s per job, followers included).
   */
  minIntervalMs?: number;
  /**
   * After this long without a request, an empty append tells the server the producer is alive (its
   * inactivity timeout would otherwise time out a build that is quiet for long).
   */
  heartbeatMs?: number;
  /** Largest request body; halved when the server answers 413. */
  maxChunkBytes?: number;
  backoff?: Backoff;
  /** The job turned terminal elsewhere (an abort through the API): nothing more can be appended. */
  onTerminal?: (status: string) => void;
  /** Something the user should know about (an outage, a give-up); one line, no trailing newline. */
  onWarning?: (message: string) => void;
}

export type DrainResult = 'delivered' | 'terminal' | 'failed' | 'timeout';

/**
 * Sends a growing byte sequence to a log in order, exactly once, whatever happens to the server in
 * between: one request in flight at a time, each carrying `X-Log-Offset`, retried with back-off on
 * network errors, 429 and 5xx. Bytes leave the queue only when the server acknowledged them; after an
 * answer got lost, the server's `X-Log-Length` says how much of the retry it already has.
 */
export class LogAppender {
  readonly #o: Required<Pick<AppenderOptions, 'lingerMs' | 'minIntervalMs'>> & AppenderOptions;
  readonly #queue: ByteQueue;
  readonly #backoff: Backoff;
  readonly #stop = new AbortController();
  #maxChunk: number;
  /** Absolute offset of the queue's first byte: everything before it is acknowledged. */
  #acked = 0;
  #written = 0;
  #crc32 = 0;
  #inflight = false;
  #lastStart = 0;
  #timer: NodeJS.Timeout | null = null;
  #state: 'open' | 'terminal' | 'failed' | 'closed' = 'open';
  #outage = false;
  #drainWaiters: (() => void)[] = [];
  readonly #heartbeat: NodeJS.Timeout;

  constructor(options: AppenderOptions) {
    this.#o = { lingerMs: 20, minIntervalMs: 40, ...options };
    this.#queue = new ByteQueue(options);
    this.#backoff = options.backoff ?? new Backoff(250, 5000);
    this.#maxChunk = options.maxChunkBytes ?? 4 * 1024 * 1024;
    const heartbeatMs = options.heartbeatMs ?? 60_000;
    this.#heartbeat = setInterval(() => this.#beat(heartbeatMs), heartbeatMs);
    this.#heartbeat.unref();
  }

  #beat(heartbeatMs: number): void {
    if (this.#state !== 'open' || this.#inflight || this.#queue.length > 0) return;
    if (Date.now() - this.#lastStart < heartbeatMs) return;
    this.#lastStart = Date.now();
    // Best effort: a lost heartbeat is followed by the next one, and real output retries on its own.
    this.#o.api.append(this.#o.jobId, Buffer.alloc(0), this.#acked, this.#stop.signal).catch(() => undefined);
  }

  /** Bytes acknowledged by the server. */
  get acked(): number {
    return this.#acked;
  }

  /** Bytes given to `write`. */
  get written(): number {
    return this.#written;
  }

  /** CRC-32 of every byte given to `write`: what a verified finish tells the server. */
  get crc32(): number {
    return this.#crc32;
  }

  get spilledBytes(): number {
    return this.#queue.spilledBytes;
  }

  get state() {
    return this.#state;
  }

  write(data: Buffer): void {
    if (data.length === 0) return;
    this.#written += data.length;
    this.#crc32 = crc32(data, this.#crc32);
    if (this.#state !== 'open') return;
    this.#queue.push(data);
    if (this.#inflight || this.#timer) return;
    if (this.#queue.length >= this.#maxChunk) this.#send();
    else this.#timer = setTimeout(() => this.#send(), this.#o.lingerMs);
  }

  /**
   * Resolves once every written byte is acknowledged ('delivered'), or the job turned terminal, or
   * sending failed for good, or `timeoutMs` passed / `signal` aborted ('timeout').
   */
  async drain(timeoutMs: number, signal?: AbortSignal): Promise<DrainResult> {
    if (this.#timer && !this.#inflight) {
      clearTimeout(this.#timer);
      this.#timer = null;
      this.#send();
    }
    const settled = new Promise<void>((resolve) => {
      if (this.#idle()) return resolve();
      this.#drainWaiters.push(resolve);
    });
    const stop = new AbortController();
    const expired = sleep(timeoutMs, signal ? AbortSignal.any([signal, stop.signal]) : stop.signal).then(() => 'timeout' as const);
    const outcome = await Promise.race([settled.then(() => 'settled' as const), expired]);
    stop.abort();
    if (outcome === 'timeout') return 'timeout';
    if (this.#state === 'terminal') return 'terminal';
    if (this.#state !== 'open') return 'failed';
    return 'delivered';
  }

  /** Stops sending (an in-flight request is cancelled) and frees the spill file. */
  close(): void {
    clearInterval(this.#heartbeat);
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#state === 'open') this.#state = 'closed';
    this.#stop.abort();
    this.#queue.close();
    this.#wakeDrainers();
  }

  #idle(): boolean {
    return this.#state !== 'open' || (this.#queue.length === 0 && !this.#inflight);
  }

  #wakeDrainers(): void {
    if (!this.#idle()) return;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }

  #send(): void {
    this.#timer = null;
    if (this.#inflight || this.#state !== 'open') return;
    if (this.#queue.length === 0) return this.#wakeDrainers();
    const wait = this.#lastStart + this.#o.minIntervalMs - Date.now();
    if (wait > 0 && this.#queue.length < this.#maxChunk) {
      this.#timer = setTimeout(() => this.#send(), wait);
      return;
    }
    this.#lastStart = Date.now();
    this.#inflight = true;
    const parts = this.#queue.peek(this.#maxChunk);
    const size = parts.reduce((n, p) => n + p.length, 0);
    const offset = this.#acked;
    this.#o.api.append(this.#o.jobId, parts, offset, this.#stop.signal).then(
      () => this.#acknowledged(offset + size),
      (err: unknown) => this.#failed(err, offset, size),
    ).finally(() => {
      this.#inflight = false;
      if (this.#state !== 'open') return this.#wakeDrainers();
      // Bytes that arrived meanwhile already waited for this request: send them at once.
      if (!this.#timer) this.#send();
    });
  }

  /** The server has everything before `end` (our offsets are the log's: this job has one producer). */
  #acknowledged(end: number): void {
    if (end > this.#acked) {
      this.#queue.consume(end - this.#acked);
      this.#acked = end;
    }
    this.#backoff.reset();
    if (this.#outage) {
      this.#outage = false;
      const spilled = this.#queue.spilledBytes ? `, ${this.#queue.spilledBytes} bytes were spilled to disk meanwhile` : '';
      this.#o.onWarning?.(`log upload resumed; nothing was lost (${this.#queue.length} bytes still queued${spilled})`);
    }
  }

  async #failed(err: unknown, offset: number, size: number): Promise<void> {
    if (this.#state !== 'open') return;
    if (err instanceof ErrorResponse && err.status === 400) {
      const length = Number(err.headers.get('x-log-length') ?? NaN);
      if (Number.isInteger(length)) return this.#reconcile(length, offset);
      return this.#checkTerminal(err);
    }
    if (err instanceof ErrorResponse && err.status === 413 && size > 1024) {
      this.#maxChunk = Math.max(1024, Math.floor(size / 2));
      return;
    }
    if (isRetryable(err)) {
      // One failure alone is not worth a message: a kept-alive connection the server had just closed.
      if (!this.#outage && this.#backoff.attempts >= 1) {
        this.#outage = true;
        this.#o.onWarning?.(`cannot deliver log output: ${(err as Error).message}; buffering it and retrying`);
      }
      // Wait here (the request is still "in flight") so that nothing else is sent meanwhile; a 429
      // says how long.
      const retryAfter = err instanceof ErrorResponse ? Number(err.headers.get('retry-after')) * 1000 || 0 : 0;
      await sleep(Math.max(this.#backoff.next(), Math.min(retryAfter, 30_000)), this.#stop.signal);
      return;
    }
    this.#giveUp(`cannot append to the log: ${(err as Error).message}`);
  }

  /**
   * The server's log length is not our offset. More than we think: an earlier attempt was stored but
   * its answer was lost, so drop what it already has. Less: bytes we saw acknowledged are gone (a
   * store restored from an older backup); they cannot be sent again, so go on from where it is.
   */
  #reconcile(length: number, offset: number): void {
    if (length >= offset && length <= offset + this.#queue.length) {
      this.#acknowledged(length);
      return;
    }
    this.#o.onWarning?.(
      length < offset
        ? `the server lost log bytes ${length}-${offset - 1} that it had acknowledged; continuing at ${length}`
        : `the log was appended to by someone else (length ${length}, expected ${offset}); continuing after it`,
    );
    this.#acked = length;
  }

  async #checkTerminal(err: ErrorResponse): Promise<void> {
    try {
      const job = await this.#o.api.getJob(this.#o.kind, this.#o.jobId, { signal: this.#stop.signal });
      if (isTerminal(job.status)) {
        this.#state = 'terminal';
        this.#queue.clear();
        this.#o.onTerminal?.(job.status);
        return;
      }
    } catch (checkErr) {
      // Could not tell (the server went away in between): try the append again later.
      if (isRetryable(checkErr)) return sleep(this.#backoff.next(), this.#stop.signal);
    }
    this.#giveUp(`cannot append to the log: ${err.message}`);
  }

  #giveUp(message: string): void {
    this.#state = 'failed';
    this.#queue.clear();
    this.#o.onWarning?.(`${message}; the command goes on, its further output is not logged`);
  }
}
