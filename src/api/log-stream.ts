import type { ServerResponse } from 'node:http';
import { pipeline, type Readable, type Transform } from 'node:stream';
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
  /** Keep the response open for live appends until the job is terminal. */
  follow: boolean;
  from: number;
  /** Stop before this offset (a Range end; without follow, the length the head described). */
  until?: number;
  /** The line a stripped read of the whole log starts with (retention dropped its head), if any. */
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
  const { r, follow, from, until } = body;
  // Held now: a finished response lets go of its socket.
  const socket = res.socket;
  let source: Readable;
  if (follow) {
    const follower = ctx.service.reads.follow(r.id, from, until, r.view, body.notice);
    ctx.followers.add(follower);
    follower.once('close', () => {
      ctx.followers.delete(follower);
      body.releaseSlot();
    });
    source = follower;
  } else {
    source = ctx.service.reads.stored(r.id, from, until!);
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
