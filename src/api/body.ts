import type { Transform } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, unsupportedEncoding } from './api-error.js';

const DECODERS: Record<string, () => Transform> = {
  gzip: createGunzip,
  'x-gzip': createGunzip,
  deflate: createInflate,
  br: createBrotliDecompress,
};

/**
 * Request bodies may be compressed with gzip, deflate or br (the JS client sends br). They are inflated
 * as a stream before parsing, so Fastify's body limit counts inflated bytes: a zip bomb stops at the
 * limit with 413 instead of filling memory. Any other Content-Encoding is 415.
 */
export function registerBodyDecoding(app: FastifyInstance): void {
  app.addHook('preParsing', async (req, _reply, payload) => {
    const header = req.headers['content-encoding'];
    if (header === undefined) return payload;
    const encoding = header.trim().toLowerCase();
    if (encoding === '' || encoding === 'identity') return payload;
    const decoder = DECODERS[encoding];
    if (!decoder) throw unsupportedEncoding(header);
    const inflated = decoder() as Transform & { receivedEncodedLength: number };
    // Fastify checks Content-Length against the bytes received on the wire, not the inflated ones.
    inflated.receivedEncodedLength = 0;
    payload.on('data', (chunk: Buffer) => (inflated.receivedEncodedLength += chunk.length));
    payload.on('error', (err) => inflated.destroy(err));
    // After bytes that are not what the Content-Encoding says (Fastify answers 400 from the error) and past
    // the body limit (413), inflating stops (a bomb would keep the CPU busy with the rest long after the
    // answer), and what the client still sends is read and discarded. Fastify closes the connection after
    // either answer; destroying the request here instead would drop it before the answer is written.
    const stopInflating = () => {
      payload.unpipe(inflated);
      payload.resume();
      inflated.destroy();
    };
    const limit = req.routeOptions.bodyLimit ?? Infinity;
    let inflatedBytes = 0;
    // Counted once Fastify reads (a 'data' listener of our own attached now would start the flow before it listens).
    inflated.once('resume', () =>
      inflated.on('data', (chunk: Buffer) => {
        inflatedBytes += chunk.length;
        if (inflatedBytes > limit) stopInflating();
      }),
    );
    inflated.on('error', stopInflating);
    payload.pipe(inflated);
    return inflated;
  });
}

/**
 * JSON bodies are optional on our POSTs (the JS client's `abort()` sends an empty body with whatever
 * Content-Type axios picks), so an empty body of any type is no body; a non-empty non-JSON body is 415.
 */
export function registerBodyParsers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if ((body as string).trim() === '') return done(null, undefined);
    parseJson(req, body as string, done);
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => {
    if ((body as Buffer).length === 0) return done(null, undefined);
    done(notJson(), undefined);
  });
}

const notJson = () => new ApiError(415, 'unsupported-media-type', 'The request body must be JSON (Content-Type: application/json).');

/**
 * A `preValidation` hook of the routes whose body is a JSON object. Fastify's own text/plain parser hands
 * them a string; it stays for the other routes (a text body on an abort is ignored there, as before), and
 * here a text body is refused like any other non-JSON one. No body (or `null`) is an empty object, which
 * the route's schema then checks (a PUT without one is told which field it needs).
 */
export async function jsonBodyOnly(req: FastifyRequest): Promise<void> {
  // A JSON string ("s") is a string too: only what the text parser produced is refused here.
  if (typeof req.body === 'string' && TEXT_PLAIN.test(req.headers['content-type'] ?? '')) {
    if (req.body.trim() !== '') throw notJson();
    req.body = undefined;
  }
  req.body ??= {};
}

/** The media type Fastify's text parser takes (it compares the type without parameters, in any case). */
const TEXT_PLAIN = /^\s*text\/plain\s*(;|$)/i;
