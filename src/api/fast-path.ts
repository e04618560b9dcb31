import type { IncomingMessage, ServerResponse } from 'node:http';
import { isTerminal, type JobKind } from '../core/job.js';
import type { RateLimits } from '../limits/rate-limit.js';
import type { Metrics } from '../ops/metrics.js';
import type { Encoding, FinishedLog } from '../reading/finished-log.js';
import type { ApiContext } from './context.js';
import { CORS_RESPONSE_HEADERS } from './cors.js';
import { finishedResponse, finishedResponseNow, type PlannedResponse } from './finished-response.js';
import { logHeaders, type LogRequest } from './log-headers.js';
import { pipeLog } from './log-stream.js';
import { pickEncoding } from './range.js';
import { keptConnections, type KeptAnswer } from './kept-connection.js';
import { countRequest, pipeFollowerToSocket, takeSocket, takeWhenFinished } from './socket-follow.js';

/**
 * Called once the fast path has certainly taken the request (its head is written next); returns what to
 * call, with the status, when the response is over.
 */
type Answered = () => (status: number) => void;

/**
 * What a taken follower calls when it is over. Made here, not inside `follow`: a closure made there would
 * hold `follow`'s context, and with it the request and the response that the socket was taken from.
 */
function whenFollowEnds(releaseSlot: () => void, count: (status: number) => void): () => void {
  return () => {
    releaseSlot();
    count(200);
  };
}

/** Counts a response held by Node's HTTP server once it has closed, with the status it went out with. */
function countWhenClosed(res: ServerResponse, count: (status: number) => void): void {
  res.once('close', () => count(res.statusCode));
}

/**
 * What counts a response answered in front of Fastify in the metrics once it is over, as Fastify's hook
 * does for its routes (`started`: the request's arrival, from `performance.now()`).
 */
export function requestCounter(metrics: Metrics | undefined, method: string, route: string, started: number): (status: number) => void {
  return metrics ? (status) => metrics.request(route, method, status, (performance.now() - started) / 1000) : () => undefined;
}

/** Handles the request and returns true, or returns false and leaves it to Fastify. */
export type FastPath = (req: IncomingMessage, res: ServerResponse, fallback: () => void) => boolean;

const LOG_PATH = /^\/v2\/(?:(actor-builds|actor-runs)\/([A-Za-z0-9]{1,64})\/log|logs\/([A-Za-z0-9]{1,64}))\/?(?:\?([^%+#]*))?$/;
const KINDS: Record<string, JobKind> = { 'actor-builds': 'build', 'actor-runs': 'run' };
/** The route patterns Fastify would have matched, for the metrics. */
const ROUTES: Record<string, string> = { 'actor-builds': '/v2/actor-builds/:id/log', 'actor-runs': '/v2/actor-runs/:id/log', '': '/v2/logs/:id' };
const FLAGS = new Set(['stream', 'download', 'raw']);
const VALUES: Record<string, boolean> = { '': false, '0': false, false: false, '1': true, true: true };

/** `stream`, `download` and `raw` with plain values, each at most once; null for anything else (Fastify decides). */
function simpleQuery(query: string | undefined): Record<string, boolean> | null {
  const flags: Record<string, boolean> = {};
  if (!query) return flags;
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = VALUES[eq < 0 ? '' : part.slice(eq + 1)];
    if (!FLAGS.has(key) || key in flags || value === undefined) return null;
    flags[key] = value;
  }
  return flags;
}

/**
 * The API's most frequent requests without the framework: a GET of a finished log that is in the cache
 * (polling clients ask for it again and again and its bytes never change), and a follower of a running
 * log arriving with a crowd. Anything this does not recognise as exactly such a request (a token, a
 * Range, private reads, an odd query, an unknown or finished job not in the cache, a request over a
 * limit, a server shutting down) goes to Fastify, whose routes answer it the same way, so the wire does
 * not tell the two paths apart: the same headers (CORS and rate-limit ones included), the same counts
 * against the same limits, the same bytes.
 */
export function logFastPath(ctx: ApiContext, limits: RateLimits, isClosing: () => boolean, warn: (err: Error) => void): FastPath {
  const reads = ctx.service.reads;
  /** Heads of 200 answers per log and variant, flattened once: only the Date header differs between them. */
  const heads = new WeakMap<FinishedLog, Map<string, (string | number)[]>>();
  /** `Accept-Encoding` values seen (clients send the same few), and the coding each picks. */
  const encodings = new Map<string | undefined, Encoding | null>();
  const encodingOf = (header: string | undefined) => {
    let e = encodings.get(header);
    if (e === undefined) {
      if (encodings.size > 100) encodings.clear();
      encodings.set(header, (e = pickEncoding(header)));
    }
    return e;
  };

  /** The log a request path names, with its view and coding; null for a path or query this path leaves to Fastify. */
  function logTarget(url: string, acceptEncoding: string | undefined) {
    const m = LOG_PATH.exec(url);
    const flags = m && simpleQuery(m[4]);
    if (!m || !flags) return null;
    const id = (m[2] ?? m[3])!;
    const request: LogRequest = { id, view: flags.raw ? 'raw' : 'text', download: !!flags.download, encoding: encodingOf(acceptEncoding) };
    return { id, kind: m[1] ? KINDS[m[1]]! : ('any' as const), request, stream: !!flags.stream, route: ROUTES[m[1] ?? '']! };
  }

  const variantOf = (request: LogRequest) => `${request.view}-${request.download}-${request.encoding}`;
  const cachedHead = (log: FinishedLog, request: LogRequest) => heads.get(log)?.get(variantOf(request));
  const bodyOf = (log: FinishedLog, request: LogRequest) => (request.encoding ? log.compressedNow(request.view, request.encoding)! : log.view(request.view));

  /**
   * A GET off a kept connection (api/kept-connection.ts): answered here only as the path below answers
   * it from a head made before, counted against the same limits and in the same metrics; everything else
   * (over a limit included) is left to Node's HTTP server and so to the path below and Fastify.
   */
  const answerKept: KeptAnswer = ({ url, acceptEncoding }, socket) => {
    const started = performance.now();
    if (isClosing()) return null;
    const target = logTarget(url, acceptEncoding);
    const log = target && reads.cached(target.id);
    if (!target || !log || (target.kind !== 'any' && target.kind !== log.kind)) return null;
    const fields = cachedHead(log, target.request);
    if (!fields || limits.check({ ip: socket.remoteAddress!, user: null, params: { id: target.id } })) return null;
    requestCounter(ctx.metrics, 'GET', target.route, started)(200);
    return { fields, body: bodyOf(log, target.request) };
  };
  const keep = keptConnections(ctx.taken, answerKept);

  /** `answered` is called when this path has certainly taken the request (its head is written next). */
  function sendFinished(req: IncomingMessage, res: ServerResponse, log: FinishedLog, request: LogRequest, requestNo: number, fallback: () => void, answered: Answered): void {
    const ifNoneMatch = req.headers['if-none-match'];
    const head = ifNoneMatch === undefined ? cachedHead(log, request) : undefined;
    if (head) {
      countWhenClosed(res, answered());
      res.writeHead(200, head);
      res.end(bodyOf(log, request));
      // A client that asks again (polling) is answered without Node's HTTP server from now on.
      if (req.method === 'GET') takeWhenFinished(req, res, requestNo, keep);
      return;
    }
    const variant = variantOf(request);
    const send = (planned: PlannedResponse) => {
      const flat: (string | number)[] = [];
      for (const [name, value] of Object.entries({ ...CORS_RESPONSE_HEADERS, 'x-ratelimit-limit': limits.limitHeader(request.id), ...planned.headers })) {
        flat.push(name, value as string | number);
      }
      if (planned.status === 200) {
        let byVariant = heads.get(log);
        if (!byVariant) heads.set(log, (byVariant = new Map()));
        byVariant.set(variant, flat);
      }
      countWhenClosed(res, answered());
      res.writeHead(planned.status, flat);
      res.end(planned.body);
    };
    // The first request for a compressed form waits for it; every later one is answered in this tick.
    const ready = finishedResponseNow(log, request, ifNoneMatch);
    if (ready) send(ready);
    else finishedResponse(log, request, ifNoneMatch, undefined).then(send, () => (res.headersSent ? res.destroy() : fallback()));
  }

  /**
   * `stream=1` on a running job: the head at once, then stored bytes and every append. The follower is
   * opened first: its one read after subscribing (the log's window, the job's kind and status) decides
   * whether this path answers at all, so a follow costs one store read. An uncompressed follow is written
   * straight to its socket, which Node's HTTP server lets go of (api/socket-follow.ts).
   */
  async function follow(req: IncomingMessage, res: ServerResponse, kind: JobKind | 'any', request: LogRequest, requestNo: number, fallback: () => void, answered: Answered): Promise<void> {
    const ip = req.socket.remoteAddress!;
    const key = `ip:${ip}`;
    if (ctx.streamSlots.count(key) >= ctx.streamSlots.maxPerClient) return fallback();
    const follower = reads.follow(request.id, 0, undefined, request.view, true);
    // Until the response takes the follower over, a failed first read (a store fault) only means that
    // Fastify answers the request, and reports it.
    const beforeHead = () => undefined;
    follower.on('error', beforeHead);
    const state = await follower.opened;
    // Counted against the limits only once it is certain that Fastify will not answer (and count) it instead.
    const refused = !state || (kind !== 'any' && state.kind !== kind) || isTerminal(state.status) || isClosing() || limits.check({ ip, user: null, params: { id: request.id } });
    if (refused) {
      follower.destroy();
      return fallback();
    }
    follower.off('error', beforeHead);
    const releaseSlot = ctx.streamSlots.acquire(key);
    const count = answered();
    res.writeHead(200, { ...CORS_RESPONSE_HEADERS, 'x-ratelimit-limit': limits.limitHeader(request.id), ...logHeaders(request), 'X-Log-Offset': state.start });
    res.flushHeaders();
    const taken = request.encoding ? null : takeSocket(res, requestNo);
    if (taken) return pipeFollowerToSocket(ctx, taken, follower, warn, whenFollowEnds(releaseSlot, count));
    countWhenClosed(res, count);
    pipeLog(ctx, res, { r: request, follower, from: state.start, notice: null, releaseSlot, warn });
  }

  return (req, res, fallback) => {
    const requestNo = countRequest(req.socket);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isClosing()) return false;
    const h = req.headers;
    if (h.authorization !== undefined || h.range !== undefined) return false;
    const target = logTarget(req.url!, h['accept-encoding']);
    if (!target) return false;
    const { id, kind, request } = target;
    const started = performance.now();
    const answered: Answered = () => requestCounter(ctx.metrics, req.method!, target.route, started);
    const log = reads.cached(id);
    if (log) {
      if (kind !== 'any' && kind !== log.kind) return false;
      // Over a limit: Fastify answers (and counts the request once more, which changes nothing once over).
      if (limits.check({ ip: req.socket.remoteAddress!, user: null, params: { id } })) return false;
      sendFinished(req, res, log, request, requestNo, fallback, answered);
      return true;
    }
    if (!target.stream || req.method !== 'GET') return false;
    follow(req, res, kind, request, requestNo, fallback, answered).catch((err: Error) => (res.headersSent ? (warn(err), res.destroy()) : fallback()));
    return true;
  };
}
