import { ErrorResponse, type BuildlogApi, isRetryable, NetworkError, toErrorResponse } from './api.js';
import { Backoff, sleep } from './backoff.js';

export interface ReadLogOptions {
  /** Absolute offset of the first byte wanted. */
  from: number;
  /** Keep reading until the job is terminal (`stream=1`), reconnecting when the connection drops. */
  follow: boolean;
  /** How long to keep reconnecting while the server gives no answer, once it answered before. */
  reconnectWindowMs?: number;
  signal?: AbortSignal;
  /** Bytes before `to` are no longer retained; the log goes on from `to`. */
  onSkipped?: (from: number, to: number) => void;
  /** The connection dropped (or the server went away); reading resumes at `offset`. */
  onReconnect?: (offset: number, reason: string) => void;
}

/**
 * The raw bytes of a log from an absolute offset, as an async iterable of chunks without gap or
 * duplicate across dropped connections: it counts every byte it yields and resumes with
 * `Range: bytes=<next>-`. Raw (`raw=1`) on purpose: then received bytes are log bytes one to one, so
 * the count is an offset; filtering is the caller's business. It ends when the server says there is
 * nothing at or after the next offset of a finished log (416), or, without `follow`, after one
 * complete answer.
 */
export async function* readLog(api: BuildlogApi, id: string, options: ReadLogOptions): AsyncGenerator<Buffer> {
  const { follow, signal } = options;
  const window = options.reconnectWindowMs ?? 60_000;
  const backoff = new Backoff(200, 5000);
  let next = options.from;
  let answered = false;
  let failingSince: number | null = null;

  /** Waits before the next attempt, or rethrows once there is no point in trying again. */
  const retry = async (err: unknown) => {
    if (signal?.aborted || !isRetryable(err)) throw err;
    // A server that never answered is a wrong URL or a server that is down: say so at once.
    if (!answered) throw err;
    failingSince ??= Date.now();
    if (Date.now() - failingSince > window) throw err;
    options.onReconnect?.(next, (err as Error).message);
    await sleep(backoff.next(), signal);
  };

  for (;;) {
    let res: Response;
    try {
      res = await api.openLog(id, { from: next, stream: follow, signal });
      if (res.status === 416) {
        await res.body?.cancel();
        return;
      }
      if (!res.ok) throw await toErrorResponse(res);
    } catch (err) {
      await retry(err);
      continue;
    }
    answered = true;
    failingSince = null;

    // Where the answer starts: later than asked when the start fell out of the retention window.
    const start = Number(res.headers.get('x-log-offset') ?? next);
    if (start > next) options.onSkipped?.(next, start);
    let skip = Math.max(0, next - start);
    next = Math.max(next, start);
    try {
      for await (const piece of res.body ?? []) {
        let chunk = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
        if (skip > 0) {
          // Only if a server ignored the Range: never print a byte twice.
          const n = Math.min(skip, chunk.length);
          chunk = chunk.subarray(n);
          skip -= n;
        }
        if (chunk.length === 0) continue;
        next += chunk.length;
        backoff.reset();
        yield chunk;
      }
    } catch (err) {
      // The body broke off mid-way: resume from the first byte not yet yielded.
      await retry(err instanceof ErrorResponse ? err : new NetworkError(api.url, err));
      continue;
    }
    // A complete answer. Following, it ends when the job is terminal, but also when the server shuts
    // down; asking again from `next` tells the two apart (416 once everything was read).
    if (!follow) return;
  }
}
