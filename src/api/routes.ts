import type { FastifyInstance, HTTPMethods, RouteHandlerMethod, RouteShorthandOptions } from 'fastify';
import { methodNotAllowed } from '../core/errors.js';
import type { JobKind } from '../core/job.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** The two kinds of job and the path of their collection. */
export const JOB_COLLECTIONS: readonly (readonly [JobKind, string])[] = [
  ['build', '/v2/actor-builds'],
  ['run', '/v2/actor-runs'],
];
const ALL: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Registers the handlers of one path, and answers every other method with Apify's 405 and `Allow`
 * (OPTIONS is the CORS preflight, answered everywhere).
 */
export function resource(
  app: FastifyInstance,
  url: string,
  handlers: Partial<Record<Method, RouteHandlerMethod>>,
  options: RouteShorthandOptions = {},
): void {
  const allowed = Object.keys(handlers) as Method[];
  for (const method of allowed) app.route({ ...options, method, url, handler: handlers[method]! });
  const served = new Set<string>(allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed);
  const others = ALL.filter((m) => !served.has(m));
  const error = methodNotAllowed(allowed);
  app.route({
    method: others,
    url,
    handler: async () => {
      throw error;
    },
  });
}
