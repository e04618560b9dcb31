import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';

/**
 * Writes `source` into `res` with backpressure and ends the response after it; if the client goes away
 * first, the source is destroyed. `done` is called once: with null when the response finished or the
 * client left (nothing to report), with the source's error when it failed (the response is destroyed).
 *
 * This is `stream.pipeline(source, res)` for one stage, by hand: pipeline gives every call an
 * AbortController and two end-of-stream watchers per stream, each with its own listeners and closures,
 * about 5 KB per response, which each of 10,000 idle followers would hold for as long as it is open.
 */
export function streamToResponse(source: Readable, res: ServerResponse, done: (err: Error | null) => void): void {
  let settled = false;
  const settle = (err: Error | null) => {
    if (settled) return;
    settled = true;
    source.off('data', onData);
    res.off('drain', onDrain);
    done(err);
  };
  const onData = (chunk: Buffer) => {
    if (!res.write(chunk)) source.pause();
  };
  const onDrain = () => source.resume();
  source.on('data', onData);
  res.on('drain', onDrain);
  source.once('end', () => res.end());
  source.once('error', (err) => {
    res.destroy();
    settle(err);
  });
  // Destroyed without an error (never by this server while the response is open): the response is cut short.
  source.once('close', () => {
    if (!source.readableEnded) res.destroy();
  });
  res.once('finish', () => settle(null));
  res.once('close', () => {
    if (!res.writableFinished) source.destroy();
    settle(null);
  });
  // A failed write (the client reset the connection) is followed by 'close', which cleans up.
  res.on('error', () => undefined);
}
