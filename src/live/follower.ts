import { Readable } from 'node:stream';
import { isTerminal } from '../core/job.js';
import type { LogState, Store } from '../store/store.js';
import { StrippedView } from '../text/stripped-view.js';
import { eventTime, type AppendEvent, type LiveBus, type LiveEvent } from './bus.js';

export interface FollowOptions {
  store: Store;
  bus: LiveBus;
  jobId: string;
  /** Absolute offset of the first byte wanted (clamped to the retention window). */
  from: number;
  /** Keep the stream open until the job is terminal (`stream=1`); otherwise serve what is there now. */
  follow: boolean;
  /** Stop before this offset (a `Range` with an end, or the length a Content-Length was computed from). */
  until?: number;
  /** How much one store read returns. */
  pageBytes?: number;
  /** Live chunks held for a reader that is not keeping up, before it falls back to reading the store. */
  maxQueuedBytes?: number;
  /** Told, for each live append written to this reader, the seconds since it was committed. */
  onLiveWrite?: (delaySecs: number) => void;
  /** `text`: the stripped view of the bytes (ANSI and markers removed), else the raw bytes. */
  view?: 'raw' | 'text';
  /**
   * What a `text` stream starts with, given the first retained offset its first read found (the
   * truncation notice of a read of the whole log), if anything.
   */
  notice?: (start: number) => Buffer | null;
}

/**
 * One reader's view of a log as a byte stream: what is stored from `from`, then (when following) every
 * append as it is committed, ending once the job is terminal and its last byte was sent.
 *
 * Live chunks are pushed as the very Buffer the bus delivered, so N followers share one copy; in the
 * stripped view, followers at a line start share one stripped copy of each append too. A follower
 * never sees a gap or a duplicate: it tracks the next offset it owes, drops what it already sent, and
 * reads anything it missed (an event skipped ahead, the reader was slow, another node appended) back
 * from the store. A slow reader therefore holds at most its stream buffer plus `maxQueuedBytes`. If bytes
 * it still owes fell out of the retention window meanwhile, it fails rather than skip them silently: the
 * response breaks off and the reader resumes with `Range` from the window.
 */
export class LogFollower extends Readable {
  readonly #o: Required<Omit<FollowOptions, 'until' | 'onLiveWrite' | 'view' | 'notice'>>;
  #notice: ((start: number) => Buffer | null) | undefined;
  /**
   * The log's state as the first read found it (after subscribing): where the stream starts and whether
   * the job was already finished; null if there is no such log (the stream then ends, empty).
   */
  readonly opened: Promise<LogState | null>;
  readonly #onLiveWrite: ((delaySecs: number) => void) | undefined;
  /** The stripped view's state, for a `text` stream. */
  readonly #text: StrippedView | null;
  /** The stream ends here at the latest. */
  readonly #limit: number;
  #next: number;
  /** Highest end offset known to be durable. */
  #knownEnd = 0;
  /** Set once the job is terminal (or not following): the offset where the stream ends. */
  #finalEnd: number | null = null;
  #started = false;
  #wanted = false;
  #pumping = false;
  #queue: AppendEvent[] = [];
  #queuedBytes = 0;
  #unsubscribe: (() => void) | null = null;
  #stopped = false;
  #ended = false;

  constructor(options: FollowOptions) {
    super({ highWaterMark: 64 * 1024 });
    // The fields it needs, not a copy of `options`: that would keep the notice's closure for as long as the follower lives.
    this.#o = {
      store: options.store,
      bus: options.bus,
      jobId: options.jobId,
      from: options.from,
      follow: options.follow,
      pageBytes: options.pageBytes ?? 256 * 1024,
      maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024,
    };
    this.#onLiveWrite = options.onLiveWrite;
    this.#text = options.view === 'text' ? new StrippedView() : null;
    this.#notice = options.notice;
    this.#next = options.from;
    this.#limit = options.until ?? Infinity;
    if (options.follow) {
      // Subscribe before reading the job, so that nothing committed after the read can be missed.
      this.#unsubscribe = options.bus.subscribe(options.jobId, (e) => this.#onEvent(e));
    }
    this.opened = this.#start().catch((err) => (this.destroy(err as Error), null));
  }

  /** `stop()` was called: the stream ends (or ended) early because the server is shutting down. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Following a job that is not finished yet (a `stream=1` response still waiting for appends). */
  get live(): boolean {
    return this.#o.follow && this.#finalEnd === null && !this.#ended && !this.destroyed;
  }

  /** The absolute offset of the next byte this stream will emit. */
  get nextOffset(): number {
    return this.#next;
  }

  async #start(): Promise<LogState | null> {
    const state = await this.#o.store.logState(this.#o.jobId);
    if (!state) {
      // Deleted before the first read: nothing to send, as after a `deleted` event.
      this.#finish(this.#next);
    } else {
      this.#next = Math.max(this.#next, state.start);
      this.#knownEnd = Math.max(this.#knownEnd, state.length);
      if (!this.#o.follow || isTerminal(state.status)) this.#finish(state.length);
      const notice = this.#text && this.#notice?.(state.start);
      this.#notice = undefined;
      // Not after a stop() that came first: that stream has ended.
      if (notice && !this.#ended && !this.destroyed) this.push(notice);
    }
    this.#started = true;
    this.#pump();
    return state;
  }

  #finish(length: number): void {
    this.#finalEnd = Math.min(length, this.#limit);
    this.#knownEnd = Math.max(this.#knownEnd, length);
  }

  #onEvent(event: LiveEvent): void {
    if (this.destroyed || this.#stopped) return;
    if (event.type === 'deleted') {
      // Nothing more will come: the stream ends cleanly after what it already sent.
      this.#finish(this.#next);
      this.#pump();
      return;
    }
    if (event.type === 'status') {
      if (isTerminal(event.status) && this.#finalEnd === null) this.#recheck(true);
      return;
    }
    if (event.type === 'resync') {
      if (this.#finalEnd === null) this.#recheck(false);
      return;
    }
    this.#knownEnd = Math.max(this.#knownEnd, event.end);
    if (event.end <= this.#next) return;
    if (this.#started && !this.#pumping && this.#wanted && this.#queue.length === 0 && event.start === this.#next && event.end <= this.#limit && event.data) {
      this.#emit(event.data, event.end, true);
      this.#observe(event);
      return;
    }
    if (event.data && this.#queuedBytes + event.data.length <= this.#o.maxQueuedBytes) {
      this.#queue.push(event);
      this.#queuedBytes += event.data.length;
    }
    this.#pump();
  }

  /**
   * Reads the log's length and the job's status from the store: after a terminal status the length is
   * final, as appends to a terminal job are refused atomically; after a resync it shows bytes whose
   * events were lost. `terminal`: an event said the job is finished (the length read is final then).
   */
  #recheck(terminal: boolean): void {
    this.#o.store
      .logState(this.#o.jobId)
      .then((state) => {
        if (!state) this.#finish(this.#next);
        else if (terminal || isTerminal(state.status)) this.#finish(state.length);
        else this.#knownEnd = Math.max(this.#knownEnd, state.length);
        this.#pump();
      })
      .catch((err) => this.destroy(err as Error));
  }

  /** `shared`: `data` is a whole append as the bus delivered it, the same Buffer for every follower. */
  #emit(data: Buffer, end: number, shared = false): void {
    if (this.#stopped) return;
    this.#next = end;
    const out = this.#text ? (shared ? this.#text.pushShared(data) : this.#text.push(data)) : data;
    // Nothing left after stripping (escape sequences alone): nothing to push.
    if (out.length > 0 && !this.push(out)) this.#wanted = false;
  }

  #observe(event: AppendEvent): void {
    // Across nodes the two clocks may disagree by a little: never a negative delay.
    if (this.#onLiveWrite && event.at !== undefined) this.#onLiveWrite(Math.max(0, eventTime() - event.at) / 1000);
  }

  override _read(): void {
    this.#wanted = true;
    this.#pump();
  }

  #pump(): void {
    if (this.#pumping || !this.#started || !this.#wanted || this.destroyed) return;
    // Caught up with a running log, as a live follower is between appends: the loop would return at once,
    // so it is not started (an async call and its promise per follower and append, in the fan-out's profile).
    if (!this.#stopped && this.#finalEnd === null && this.#next >= this.#knownEnd && this.#next < this.#limit) return;
    this.#pumping = true;
    this.#pumpLoop().catch((err) => this.destroy(err as Error));
  }

  /** Ends the response cleanly after what was already sent (server shutdown); the reader resumes with Range. */
  stop(): void {
    if (this.#stopped || this.destroyed) return;
    this.#stopped = true;
    if (!this.#pumping) this.#end();
  }

  async #pumpLoop(): Promise<void> {
    try {
      while (this.#wanted && !this.destroyed) {
        if (this.#stopped) return this.#end();
        const target = Math.min(this.#finalEnd ?? this.#knownEnd, this.#limit);
        if (this.#next >= target) {
          if (this.#finalEnd !== null || this.#next >= this.#limit) this.#end();
          return;
        }
        this.#dropQueued();
        const head = this.#queue[0];
        if (head?.data && head.start <= this.#next) {
          this.#queue.shift();
          this.#queuedBytes -= head.data.length;
          const end = Math.min(head.end, target);
          const whole = head.start === this.#next && end === head.end;
          this.#emit(whole ? head.data : head.data.subarray(this.#next - head.start, end - head.start), end, whole);
          this.#observe(head);
          continue;
        }
        const slice = await this.#o.store.readLog(this.#o.jobId, this.#next, Math.min(this.#o.pageBytes, target - this.#next));
        if (this.destroyed) return;
        if (!slice) {
          // The job was deleted while we read: end after what was sent, as on the `deleted` event.
          this.#finish(this.#next);
          continue;
        }
        if (slice.start > this.#next) {
          throw new Error(`log ${this.#o.jobId}: bytes ${this.#next}-${slice.start - 1} left the retention window before they were sent`);
        }
        if (slice.end <= this.#next) {
          // Nothing readable although an event said so: only possible if the store lost data. Do not spin.
          throw new Error(`log ${this.#o.jobId}: store has no bytes at ${this.#next}`);
        }
        this.#emit(slice.data, slice.end);
      }
    } finally {
      // Cleared in the same synchronous step as the loop's last check: a _read() or event arriving after it
      // must start a new pump, not be swallowed by one that has already decided to stop.
      this.#pumping = false;
    }
  }

  #dropQueued(): void {
    while (this.#queue.length && this.#queue[0]!.end <= this.#next) {
      this.#queuedBytes -= this.#queue.shift()!.data!.length;
    }
  }

  #end(): void {
    if (this.readableEnded || this.#ended) return;
    this.#ended = true;
    this.#release();
    const tail = this.#text?.end();
    if (tail?.length) this.push(tail);
    this.push(null);
  }

  #release(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#release();
    callback(error);
  }
}
