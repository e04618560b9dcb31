import { LineTimestamper } from '../text/timestamper.js';

export type OutputStream = 'stdout' | 'stderr';

interface StreamState {
  stamper: LineTimestamper;
  /** The unfinished last line, not yet in the log. */
  held: Buffer | null;
  /** When the held line's first byte arrived (its timestamp). */
  heldAt: Date;
  timer: NodeJS.Timeout | null;
}

/**
 * Turns a command's stdout and stderr into one log byte sequence.
 *
 * Without timestamps the bytes go out exactly as they come, in arrival order. With timestamps every
 * log line starts with the time its first byte arrived (`LineTimestamper`), and lines of the two
 * streams do not run into each other: a stream's unfinished last line is held back until its newline
 * comes, or for at most `partialDelayMs` (then it is sent as it is: a progress bar, a prompt), so that
 * the other stream's lines go around it. If the other stream writes while such a sent-but-unfinished
 * line is open in the log, that line is ended with a newline first (the one byte that is not the
 * command's own), and its continuation starts a new line with its own timestamp.
 */
export class OutputLog {
  readonly #sink: (data: Buffer) => void;
  readonly #timestamps: boolean;
  readonly #delayMs: number;
  #clock = new Date();
  readonly #streams: Record<OutputStream, StreamState>;
  /** The stream whose unfinished line is the end of the log, if any. */
  #open: OutputStream | null = null;

  constructor(sink: (data: Buffer) => void, options: { timestamps: boolean; partialDelayMs?: number }) {
    this.#sink = sink;
    this.#timestamps = options.timestamps;
    this.#delayMs = options.partialDelayMs ?? 50;
    const state = (): StreamState => ({ stamper: this.#stamper(), held: null, heldAt: new Date(0), timer: null });
    this.#streams = { stdout: state(), stderr: state() };
  }

  write(stream: OutputStream, chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (!this.#timestamps) return this.#sink(chunk);
    const s = this.#streams[stream];
    const now = new Date();
    const lastLf = chunk.lastIndexOf(0x0a);
    if (lastLf === -1) {
      if (s.held) s.held = Buffer.concat([s.held, chunk]);
      else if (this.#open === stream) this.#emit(stream, chunk, now); // continues the line already sent
      else this.#hold(stream, chunk, now);
      return;
    }
    const complete = chunk.subarray(0, lastLf + 1);
    if (s.held) {
      // The held line ends in this chunk: it keeps the time of its first byte, the lines after it get
      // now. Two emits back to back (nothing can come between them) instead of copying the two together.
      const held = s.held;
      s.held = null;
      this.#emit(stream, held, s.heldAt);
      this.#emit(stream, complete, now);
    } else {
      this.#emit(stream, complete, now);
    }
    if (lastLf + 1 < chunk.length) this.#hold(stream, chunk.subarray(lastLf + 1), now);
  }

  /** Sends whatever is held (the output ended); an unfinished last line stays unfinished. */
  end(): void {
    const held = (['stdout', 'stderr'] as const)
      .filter((name) => this.#streams[name].held)
      .sort((a, b) => this.#streams[a].heldAt.getTime() - this.#streams[b].heldAt.getTime());
    for (const name of held) this.#flushHeld(name);
    for (const s of Object.values(this.#streams)) if (s.timer) clearTimeout(s.timer);
  }

  #stamper(): LineTimestamper {
    return new LineTimestamper(() => this.#clock);
  }

  #hold(stream: OutputStream, data: Buffer, at: Date): void {
    const s = this.#streams[stream];
    s.held = data;
    s.heldAt = at;
    // One timer per stream, re-armed only when it fires early: heavy output holds a tail per chunk.
    if (!s.timer) s.timer = setTimeout(() => this.#onTimer(stream), this.#delayMs);
  }

  #onTimer(stream: OutputStream): void {
    const s = this.#streams[stream];
    s.timer = null;
    if (!s.held) return;
    const age = Date.now() - s.heldAt.getTime();
    if (age >= this.#delayMs) this.#flushHeld(stream);
    else s.timer = setTimeout(() => this.#onTimer(stream), this.#delayMs - age);
  }

  #flushHeld(stream: OutputStream): void {
    const s = this.#streams[stream];
    if (!s.held) return;
    const data = s.held;
    s.held = null;
    this.#emit(stream, data, s.heldAt);
  }

  #emit(stream: OutputStream, data: Buffer, at: Date): void {
    if (this.#open && this.#open !== stream) {
      this.#sink(Buffer.from('\n'));
      this.#streams[this.#open].stamper = this.#stamper();
    }
    this.#clock = at;
    this.#sink(this.#streams[stream].stamper.push(data));
    this.#open = data[data.length - 1] === 0x0a ? null : stream;
  }
}
