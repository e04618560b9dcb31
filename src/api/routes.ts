import type {
  FastifyInstance,
  FastifySchema,
  HTTPMethods,
  preValidationAsyncHookHandler,
  RouteHandlerMethod,
  RouteShorthandOptions,
} from 'fastify';
import { methodNotAllowed } from './api-error.js';
import type { JobKind } from '../core/job.js';

type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The kind of job the path's `:id` names: a malformed id is that kind's 404 (validation.ts), as an unknown one is. */
    jobKind?: JobKind | 'any';
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

/** A path that names a job of `kind` by `:id`. */
export function jobResource(
  app: FastifyInstance,
  kind: JobKind | 'any',
  url: string,
  operations: Partial<Record<Method, Operation>>,
): void {
  resource(app, url, operations, { config: { jobKind: kind } });
}

/** The three paths of a job's log (a build's, a run's, either's by id), with their kind and a name for the docs. */
export const LOG_PATHS: readonly (readonly [JobKind | 'any', string, string])[] = [
  ['build', '/v2/actor-builds/:id/log', "a build's log"],
  ['run', '/v2/actor-runs/:id/log', "a run's log"],
  ['any', '/v2/logs/:id', "a build's or run's log"],
];
