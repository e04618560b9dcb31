import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../api/api-error.js';
import { resource } from '../api/routes.js';
import { content, data, errors } from '../api/schemas.js';
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

const OK = { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] };
const READY = {
  ...OK,
  properties: { ...OK.properties, checks: { type: 'object', additionalProperties: { const: 'ok' }, description: 'each backend checked, by name' } },
  required: ['status', 'checks'],
};

/** GET /healthz, /readyz and /metrics. */
export function opsRoutes(app: FastifyInstance, options: OpsRoutesOptions): void {
  const routeOptions = { config: OPS_ROUTE };
  resource(
    app,
    '/healthz',
    {
      GET: {
        schema: {
          summary: 'Liveness: the process answers',
          tags: ['Operations'],
          response: { 200: data(OK, 'the process answers') },
        },
        // Nothing else is looked at (a liveness probe must not fail because the disk is full).
        handler: async () => ({ data: { status: 'ok' } }),
      },
    },
    routeOptions,
  );
  resource(
    app,
    '/readyz',
    {
      GET: {
        schema: {
          summary: 'Readiness: every backend answers within 1 s and the store can be written',
          tags: ['Operations'],
          response: { 200: data(READY, 'ready'), ...errors(503) },
        },
        handler: async (_req: FastifyRequest, reply: FastifyReply) => {
          reply.header('Cache-Control', 'no-store');
          return { data: { status: 'ok', checks: await readiness(options.checks) } };
        },
      },
    },
    routeOptions,
  );
  resource(
    app,
    '/metrics',
    {
      GET: {
        schema: {
          summary: 'Prometheus metrics (text format)',
          tags: ['Operations'],
          ...(options.metricsToken !== undefined ? { security: [{ metricsToken: [] }] } : {}),
          response: { 200: content('the metrics, in the Prometheus text format 0.0.4', 'text/plain'), ...errors(401) },
        },
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          if (options.metricsToken !== undefined) {
            const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
            if (!match || !sameToken(match[1]!, options.metricsToken)) throw metricsTokenRequired();
          }
          const text = await options.metrics.text();
          return reply.header('Cache-Control', 'no-store').type(options.metrics.contentType).send(text);
        },
      },
    },
    routeOptions,
  );
}
