import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../core/errors.js';
import { resource } from '../api/routes.js';
import { readiness, type ReadinessCheck } from './health.js';
import type { Metrics } from './metrics.js';
import { OPS_ROUTE } from './route-flag.js';

export interface OpsRoutesOptions {
  checks: readonly ReadinessCheck[];
  metrics: Metrics;
  /** `--metrics-token`: when set, /metrics needs it as a Bearer token. */
  metricsToken?: string;
}

const metricsTokenRequired = () =>
  new ApiError(401, 'token-not-valid', 'GET /metrics needs the metrics token as Authorization: Bearer <token>.', {
    'WWW-Authenticate': 'Bearer realm="metrics"',
  });

function sameToken(sent: string, expected: string): boolean {
  const a = Buffer.from(sent);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** GET /healthz, /readyz and /metrics. */
export function opsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const routeOptions = { config: OPS_ROUTE };
  // The process answers: nothing else is looked at (a liveness probe must not fail because the disk is full).
  resource(app, '/healthz', { GET: async () => ({ data: { status: 'ok' } }) }, routeOptions);
  resource(
    app,
    '/readyz',
    {
      GET: async (_req, reply: FastifyReply) => {
        reply.header('Cache-Control', 'no-store');
        return { data: { status: 'ok', checks: await readiness(options.checks) } };
      },
    },
    routeOptions,
  );
  resource(
    app,
    '/metrics',
    {
      GET: async (req: FastifyRequest, reply: FastifyReply) => {
        if (options.metricsToken !== undefined) {
          const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
          if (!match || !sameToken(match[1]!, options.metricsToken)) throw metricsTokenRequired();
        }
        const text = await options.metrics.text();
        return reply.header('Cache-Control', 'no-store').type(options.metrics.contentType).send(text);
      },
    },
    routeOptions,
  );
}
