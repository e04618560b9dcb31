import type { IncomingMessage, ServerResponse } from 'node:http';
import { bearerToken } from '../auth/request-auth.js';
import { hashToken } from '../auth/tokens.js';
import { BoundedMap } from '../core/bounded-map.js';
import type { JobRecord } from '../core/job.js';
import type { RateLimits } from '../limits/rate-limit.js';
import { envelope, internalError, type ApiError } from './api-error.js';
import type { ApiContext } from './context.js';
import { CORS_RESPONSE_HEADERS } from './cors.js';
import { apiErrorOf } from './errors.js';
import { requestCounter, type FastPath } from './fast-path.js';
import { APPEND_ROUTE, LOG_OFFSET_PATTERN } from './producer.js';

const CHUNKS_PATH = /^\/v2\/logs\/([A-Za-z0-9]{1,64})\/chunks$/;
const OFFSET = new RegExp(LOG_OFFSET_PATTERN);
const CONTENT_LENGTH = /^\d{1,15}$/;
const JSON_TYPE = 'application/json; charset=utf-8';
/** Jobs whose owner is kept in memory (the running builds a node takes appends for). */
const MAX_KNOWN_JOBS = 10_000;

type Owned = Pick<JobRecord, 'id' | 'userId'>;

/**
 * The producer's append (`POST /v2/logs/:id/chunks`) without the framework: a build streaming its output
 * sends one for every few lines, and through Fastify's hooks, parser and serializer each cost about as
 * much server CPU as the commit and the writes to twenty followers together (the fan-out row's profile).
 * Only the plain form is taken: a Bearer token, a Content-Length within the body limit, no
 * Content-Encoding or Expect, a well-formed X-Log-Offset, a known user appending to its own job within
 * the rate limits. Everything else, and anything that fails before the body is read, goes to the route,
 * which answers it as before; the wire does not tell the two apart (the same headers, counts and body).
 * `report` is told of the failures the route would log (a 500).
 */
export function appendFastPath(ctx: ApiContext, limits: RateLimits, isClosing: () => boolean, report: (err: Error) => void): FastPath {
  const { service, config, metrics } = ctx;

  /**
   * The owners of jobs appended to, by id: a job's owner never changes, and an append to a job deleted
   * since is refused by the store as it would be by the route (404). Spares a store read per append.
   */
  const owners = new BoundedMap<string, Owned>(MAX_KNOWN_JOBS);
  async function ownerOf(id: string): Promise<Owned | null> {
    const job = await service.store.getJob(id);
    if (!job) return null;
    const owned = { id: job.id, userId: job.userId };
    owners.set(id, owned);
    return owned;
  }

  /** The head shared by both answers: what @fastify/cors and the rate limits add, then the route's own. */
  function send(res: ServerResponse, status: number, id: string, extra: Record<string, string>, body: string): void {
    const head: Record<string, string | number> = { ...CORS_RESPONSE_HEADERS, 'x-ratelimit-limit': limits.limitHeader(id) };
    // Lower-cased, as Fastify's reply writes every name.
    for (const [name, value] of Object.entries(extra)) head[name.toLowerCase()] = value;
    head['content-type'] = JSON_TYPE;
    head['content-length'] = Buffer.byteLength(body);
    // As the route's onSend hook says once a shutdown began: the client sends its next request elsewhere.
    if (isClosing()) head.connection = 'close';
    res.writeHead(status, head);
    res.end(body);
  }

  function sendError(res: ServerResponse, id: string, err: ApiError): void {
    send(res, err.statusCode, id, err.headers, JSON.stringify(envelope(err)));
  }

  async function append(req: IncomingMessage, res: ServerResponse, id: string, token: string, length: number, fallback: () => void): Promise<void> {
    const started = performance.now();
    const user = await service.userByTokenHash(hashToken(token));
    const job = user && (owners.get(id) ?? (await ownerOf(id)));
    // Counted against the limits only once the route certainly will not answer (and count) it instead.
    if (!user || !job || job.userId !== user.id || isClosing() || limits.check({ ip: req.socket.remoteAddress!, user, params: { id } })) {
      return fallback();
    }
    // Once answered: a client gone before its body was whole is not a request answered.
    const count = requestCounter(metrics, 'POST', APPEND_ROUTE, started);
    res.once('finish', () => count(res.statusCode));
    const data = await readBody(req, length);
    // The client went away before its body was whole: nothing was appended, and there is no one to answer.
    if (!data) return void res.destroy();
    const offsetHeader = req.headers['x-log-offset'] as string | undefined;
    try {
      const result = await service.append(job, data, offsetHeader === undefined ? undefined : Number(offsetHeader));
      const answer = { data: { id, offset: result.start, length: result.end, duplicate: result.duplicate } };
      send(res, 200, id, { 'x-log-length': String(result.end) }, JSON.stringify(answer));
    } catch (err) {
      const known = apiErrorOf(err);
      if (!known || known.statusCode >= 500) report(err as Error);
      sendError(res, id, known ?? internalError());
    }
  }

  return (req, res, fallback) => {
    if (req.method !== 'POST' || isClosing()) return false;
    const m = CHUNKS_PATH.exec(req.url!);
    if (!m) return false;
    const h = req.headers;
    const token = h.authorization === undefined ? null : bearerToken(h.authorization);
    const length = h['content-length'];
    if (!token || length === undefined || !CONTENT_LENGTH.test(length) || Number(length) > config.maxBodyBytes) return false;
    if (h['content-encoding'] !== undefined || h['transfer-encoding'] !== undefined || h.expect !== undefined) return false;
    const offset = h['x-log-offset'];
    if (offset !== undefined && (typeof offset !== 'string' || !OFFSET.test(offset))) return false;
    const id = m[1]!;
    append(req, res, id, token, Number(length), fallback).catch((err: Error) => {
      // Before the body was read (a store fault looking up the token or the job), the route answers: it meets the same fault.
      if (!res.headersSent && !req.readableDidRead) return fallback();
      report(err);
      res.destroy();
    });
    return true;
  };
}

/** The request's body, `length` bytes as its Content-Length said (Node's parser ends it there); null if the client went away first. */
function readBody(req: IncomingMessage, length: number): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      parts.push(chunk);
      received += chunk.length;
    });
    req.once('end', () => resolve(received === length ? (parts.length === 1 ? parts[0]! : Buffer.concat(parts, received)) : null));
    // After 'end' this changes nothing; before it, the request was aborted.
    req.once('close', () => resolve(null));
  });
}
