import type { FastifyRequest } from 'fastify';
import { requireUser } from '../auth/request-auth.js';
import type { JobKind } from '../core/job.js';
import type { ApiContext } from './context.js';
import { LIST_QUERY, listParams } from './params.js';
import type { Operation } from './routes.js';
import { data, errors, JOB } from './schemas.js';
import { jobToWire } from './wire.js';

type Query = Record<string, string | string[] | undefined>;

/**
 * One page of jobs in Apify's list envelope `{data: {total, offset, limit, desc, count, items}}`.
 * Ascending by `startedAt` by default, so paging forward stays stable while new jobs start.
 */
export async function listJobs(ctx: ApiContext, req: FastifyRequest, scope: { userId: string; kind: JobKind; actId?: string }) {
  const { offset, limit, desc, statuses } = listParams(req.query as Query);
  const page = await ctx.service.listJobs({ ...scope, statuses, offset, limit, desc });
  const now = Date.now();
  return {
    data: { total: page.total, offset, limit, desc, count: page.items.length, items: page.items.map((j) => jobToWire(j, { now })) },
  };
}

/** Apify's list envelope of job objects (their `logTruncatedBytes` is null: not looked up for a list). */
export const JOB_LIST = {
  type: 'object',
  properties: {
    total: { type: 'integer' },
    offset: { type: 'integer' },
    limit: { type: 'integer' },
    desc: { type: 'boolean' },
    count: { type: 'integer' },
    items: { type: 'array', items: JOB },
  },
};

/** The schema of a list of jobs (`what`: whose). */
export const listSchema = (kind: JobKind, what: string) => ({
  summary: `List ${what} ${kind}s`,
  tags: ['Apify'],
  security: [{ bearer: [] }],
  querystring: LIST_QUERY,
  response: { 200: data(JOB_LIST, `one page of ${kind}s`), ...errors(400, 401, 403, 404, 429) },
});

/** GET /v2/actor-builds, GET /v2/actor-runs: the token's user's jobs of that kind. */
export const listOwnJobs = (ctx: ApiContext, kind: JobKind): Operation => ({
  schema: listSchema(kind, "the token user's"),
  // Without a token the answer is 401 whatever the query holds, as before the query is looked at.
  preValidation: [async (req: FastifyRequest) => void requireUser(req)],
  handler: (req: FastifyRequest) => listJobs(ctx, req, { userId: requireUser(req).id, kind }),
});
