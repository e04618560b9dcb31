import type {
  FastifyInstance,
  FastifySchema,
  HTTPMethods,
  preValidationAsyncHookHandler,
  RouteHandlerMethod,
  RouteShorthandOptions,
} from 'fastify';
import { methodNotAllowed, type ApiError } from '../core/errors.js';
import type { JobKind } from '../core/job.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's 404 for a malformed path id (validation.ts), the same as for an unknown one. */
    notFound?: () => ApiError;
  }
}

/** The two kinds of job and the path of their collection. */
export const JOB_COLLECTIONS: readonly (readonly [JobKind, string])[] = [
  ['build', '/v2/actor-builds'],
  ['run', '/v2/actor-runs'],
];
const ALL: HTTPMethods[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * One method of a path: its handler, the schema that validates its input and describes it in /openapi.json
 * (every route has one; test/openapi.test.ts checks), and checks that come before the schema's.
 */
export interface Operation {
  handler: RouteHandlerMethod;
  schema: FastifySchema & { summary: string; tags?: string[] };
  preValidation?: preValidationAsyncHookHandler[];
}

/**
 * Registers the operations of one path (`options` apply to each of them), and answers every other method with Apify's 405 and `Allow`
 * (OPTIONS is the CORS preflight, answered everywhere). The 405 routes are left out of /openapi.json.
 */
export function resource(
  app: FastifyInstance,
  url: string,
  operations: Partial<Record<Method, Operation>>,
  options: RouteShorthandOptions = {},
): void {
  const allowed = Object.keys(operations) as Method[];
  for (const method of allowed) {
    const { handler, schema, preValidation } = operations[method]!;
    app.route({ ...options, method, url, handler, schema, ...(preValidation ? { preValidation } : {}) });
  }
  const served = new Set<string>(allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed);
  const others = ALL.filter((m) => !served.has(m));
  const error = methodNotAllowed(allowed);
  app.route({
    method: others,
    url,
    schema: { hide: true },
    handler: async () => {
      throw error;
    },
  });
}
