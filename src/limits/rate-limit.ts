import LocalStore from '@fastify/rate-limit/store/LocalStore.js';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rateLimitExceeded, type ApiError } from '../api/api-error.js';
import { isOpsRequest } from '../ops/route-flag.js';
import type { SharedCounts } from './shared-counts.js';

export interface RateLimitOptions {
  /** Requests per second to one resource (one job's object or log), Apify's default 60. */
  perResourcePerSecond: number;
  /** Requests per minute per client (the token's user, else the IP), Apify's default 250,000. */
  perClientPerMinute: number;
  /** Counted across the nodes of an installation (scale-out), else on this node. */
  shared?: SharedCounts;
}

/** What the limits look at in a request (a Fastify request, or the finished-log fast path's own). */
export type Limited = Pick<FastifyRequest, 'ip' | 'user' | 'params'>;

/** The client a request counts against: its token's user, else its address. */
export function clientKey(req: Limited): string {
  return req.user ? `user:${req.user.id}` : `ip:${req.ip}`;
}

const resourceId = (req: Limited) => (req.params as { id?: string } | undefined)?.id;

export interface RateLimits {
  /** The value of `X-RateLimit-Limit` for a request to resource `id` (or to no resource). */
  limitHeader(id: string | undefined): number;
  /** Counts the request; the 429 to answer when it is over a limit, else null. */
  check(req: Limited): ApiError | null;
}

/** One fixed-window limit: `max` requests per `windowMs` per key, on this node or (`shared`) across the installation. */
function limit(max: number, windowMs: number, shared?: SharedCounts): (key: string) => ApiError | null {
  if (shared) {
    return (key) => {
      const w = shared.hit(key, windowMs);
      return w.count > max ? rateLimitExceeded(Math.max(1, Math.ceil(w.msLeft / 1000))) : null;
    };
  }
  // The in-memory counters are an LRU; 5,000 (the default) would let a crowd of ids evict a busy job's counter.
  const store = new LocalStore(false, false, 100_000);
  return (key) => {
    let refused: ApiError | null = null;
    store.incr(key, (_err, w) => {
      if (w.current > max) refused = rateLimitExceeded(Math.max(1, Math.ceil(w.ttl / 1000)));
    }, windowMs, max);
    return refused;
  };
}

/**
 * Apify's two limits, counted in @fastify/rate-limit's own in-memory store. Its plugin is not registered:
 * the plugin only checks asynchronously and only a Fastify request, while the finished-log fast path
 * (src/api/fast-path.ts) must count against the same counters synchronously (a response written after
 * an extra tick costs a third more CPU). Must be registered after auth, so that a token's requests count
 * against its user. Every response says its limit in `X-RateLimit-Limit`; over it: 429 with `Retry-After`.
 */
export function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): RateLimits {
  const perClient = limit(options.perClientPerMinute, 60_000, options.shared);
  const perResource = limit(options.perResourcePerSecond, 1000, options.shared);
  const limits: RateLimits = {
    limitHeader: (id) => (id ? options.perResourcePerSecond : options.perClientPerMinute),
    check(req) {
      const id = resourceId(req);
      return perClient(clientKey(req)) ?? (id ? perResource(`job:${id}`) : null);
    },
  };
  app.addHook('onRequest', async (req, reply) => {
    if (isOpsRequest(req)) return;
    reply.header('X-RateLimit-Limit', limits.limitHeader(resourceId(req)));
    const refused = limits.check(req);
    if (refused) throw refused;
  });
  return limits;
}
