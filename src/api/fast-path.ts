import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JobKind } from '../core/job.js';
import type { RateLimits } from '../limits/rate-limit.js';
import type { Encoding, FinishedLog } from '../reading/finished-log.js';
import type { LogReads } from '../reading/log-reads.js';
import { CORS_RESPONSE_HEADERS } from './cors.js';
import { finishedResponse, finishedResponseNow, type PlannedResponse } from './finished-response.js';
import { pickEncoding } from './range.js';

/** Handles the request and returns true, or returns false and leaves it to Fastify. */
export type FastPath = (req: IncomingMessage, res: ServerResponse, fallback: () => void) => boolean;

const LOG_PATH = /^\/v2\/(?:(actor-builds|actor-runs)\/([A-Za-z0-9]{1,64})\/log|logs\/([A-Za-z0-9]{1,64}))\/?(?:\?([^%+#]*))?$/;
const KINDS: Record<string, JobKind> = { 'actor-builds': 'build', 'actor-runs': 'run' };
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
 * The answer to the API's most frequent request, a GET of a finished log that is in the cache, without
 * the framework: polling clients ask for it again and again and its bytes never change. Anything this
 * does not recognise as exactly that case (a token, a Range, private reads, an odd query, a cache miss,
 * a request over a rate limit, a server shutting down) goes to Fastify, whose routes answer it the same
 * way, so the wire does not tell the two paths apart: the same headers (CORS and rate-limit ones
 * included), the same counts against the same rate limits, the same bytes.
 */
export function finishedLogFastPath(reads: LogReads, limits: RateLimits, isClosing: () => boolean): FastPath {
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

  return (req, res, fallback) => {
    if ((req.method !== 'GET' && req.method !== 'HEAD') || isClosing()) return false;
    const h = req.headers;
    if (h.authorization !== undefined || h.range !== undefined) return false;
    const m = LOG_PATH.exec(req.url!);
    if (!m) return false;
    const id = (m[2] ?? m[3])!;
    const log = reads.cached(id);
    if (!log || (m[1] && KINDS[m[1]] !== log.kind)) return false;
    const flags = simpleQuery(m[4]);
    if (!flags) return false;
    // Over a limit: Fastify answers (and counts the request once more, which changes nothing once over).
    if (limits.check({ ip: req.socket.remoteAddress!, user: null, params: { id } })) return false;
    const request = { id, view: flags.raw ? 'raw' : 'text', download: !!flags.download, encoding: encodingOf(h['accept-encoding']) } as const;
    const variant = `${request.view}-${request.download}-${request.encoding}`;
    const head = h['if-none-match'] === undefined ? heads.get(log)?.get(variant) : undefined;
    if (head) {
      res.writeHead(200, head);
      res.end(request.encoding ? log.compressedNow(request.view, request.encoding) : log.view(request.view));
      return true;
    }
    const send = (planned: PlannedResponse) => {
      const flat: (string | number)[] = [];
      for (const [name, value] of Object.entries({ ...CORS_RESPONSE_HEADERS, 'x-ratelimit-limit': limits.limitHeader(id), ...planned.headers })) {
        flat.push(name, value as string | number);
      }
      if (planned.status === 200) {
        let byVariant = heads.get(log);
        if (!byVariant) heads.set(log, (byVariant = new Map()));
        byVariant.set(variant, flat);
      }
      res.writeHead(planned.status, flat);
      res.end(planned.body);
    };
    // The first request for a compressed form waits for it; every later one is answered in this tick.
    const ready = finishedResponseNow(log, request, h['if-none-match']);
    if (ready) send(ready);
    else finishedResponse(log, request, h['if-none-match'], undefined).then(send, () => (res.headersSent ? res.destroy() : fallback()));
    return true;
  };
}
