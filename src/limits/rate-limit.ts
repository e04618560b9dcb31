import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rateLimitExceeded } from '../core/errors.js';

export interface RateLimitOptions {
  /** Requests per second to one resource (one job's object or log), Apify's default 60. */
  perResourcePerSecond: number;
  /** Requests per minute per client (the token's user, else the IP), Apify's default 250,000. */
  perClientPerMinute: number;
}

/** The client a request counts against: its token's user, else its address. */
export function clientKey(req: FastifyRequest): string {
  return req.user ? `user:${req.user.id}` : `ip:${req.ip}`;
}

const resourceId = (req: FastifyRequest) => (req.params as { id?: string } | undefined)?.id;

/**
 * Apify's two limits, counted by @fastify/rate-limit (in memory on one node; its Redis store can share
 * the counts between nodes). Must be registered after auth, so that a token's requests count against
 * its user. Every response says its limit in `X-RateLimit-Limit`; over it: 429 with `Retry-After`.
 */
export async function registerRateLimits(app: FastifyInstance, options: RateLimitOptions): Promise<void> {
  // The in-memory counters are an LRU; 5,000 (the default) would let a crowd of ids evict a busy job's counter.
  await app.register(rateLimit, { global: false, cache: 100_000 });
  const perClient = app.createRateLimit({
    max: options.perClientPerMinute,
    timeWindow: 60_000,
    keyGenerator: clientKey,
  });
  const perResource = app.createRateLimit({
    max: options.perResourcePerSecond,
    timeWindow: 1000,
    keyGenerator: (req) => `job:${resourceId(req)}`,
  });
  app.addHook('onRequest', async (req, reply) => {
    const id = resourceId(req);
    reply.header('X-RateLimit-Limit', id ? options.perResourcePerSecond : options.perClientPerMinute);
    for (const check of id ? [perClient, perResource] : [perClient]) {
      const result = await check(req);
      if (!result.isAllowed && result.isExceeded) throw rateLimitExceeded(Math.max(1, result.ttlInSeconds));
    }
  });
}
