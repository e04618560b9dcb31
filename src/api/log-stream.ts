import type { ServerResponse } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
import type { LogFollower } from '../live/follower.js';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import { strippedViewStream } from '../text/stripped-view.js';
import type { ApiContext } from './context.js';
import type { LogRequest } from './log-headers.js';
import { streamToResponse } from './stream-to-response.js';

function compressor(encoding: 'gzip' | 'br', live: boolean): Transform {
  // While following, every write is flushed so that a line reaches the reader as soon as it is logged.
  if (encoding === 'gzip') return createGzip(live ? { flush: constants.Z_SYNC_FLUSH } : {});
  return createBrotliCompress({
    ...(live ? { flush: constants.BROTLI_OPERATION_FLUSH } : {}),
    params: { [constants.BROTLI_PARAM_QUALITY]: live ? 4 : 6 },
  });
}

export interface LogBody {
  r: LogRequest;
  /**
   * The live follower the body is (`stream=1` on a running job: `ctx.service.reads.follow`); null: the
   * stored bytes [from, until) are sent.
   */
  follower: LogFollower | null;
  from: number;
  /** Where the stored bytes end: the length the head described, or a Range end. */
  until?: number;
  /** The line a stripped read of the whole stored log starts with (retention dropped its head), if any. */
  notice: Buffer | null;
  /** Gives the client's stream slot back (followers only). */
  releaseSlot: () => void;
  /** Told about a failure other than the reader going away. */
  warn: (err: Error) => void;
}

/**
 * The body of a log response whose head was written: stored bytes, then (when following) every append.
 * A follower is registered so that a shutdown can end it cleanly; the bytes are filtered to the
 * requested view (by the follower itself, which shares the work with the log's other followers) and
 * compressed on the way.
 */
export function pipeLog(ctx: ApiContext, res: ServerResponse, body: LogBody): void {
  const { r, follower } = body;
  const follow = follower !== null;
  // Held now: a finished response lets go of its socket.
  const socket = res.socket;
  let source: Readable;
  if (follower) {
    ctx.followers.add(follower);
    follower.once('close', () => {
      ctx.followers.delete(follower);
      body.releaseSlot();
    });
    source = follower;
  } else {
    source = ctx.service.reads.stored(r.id, body.from, body.until!);
  }
  const stages: (Readable | Transform)[] = [source];
  if (!follow && r.view === 'text') stages.push(strippedViewStream(body.notice));
  if (r.encoding) stages.push(compressor(r.encoding, follow));
  const done = (err: Error | null) => {
    // Ended early by a shutdown: the connection goes too (its head said keep-alive), so the server can finish closing.
    if (!err && 'stopped' in source && source.stopped) socket?.end();
    if (!err) return;
    res.destroy();
    // A reader that goes away mid-stream is normal; anything else is worth a line in the server log.
    if ((err as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') body.warn(err);
  };
  if (stages.length === 1) streamToResponse(source, res, done);
  else pipeline([...stages, res], done);
}
