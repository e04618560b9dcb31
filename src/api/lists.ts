import type { FastifyRequest } from 'fastify';
import { requireUser } from '../auth/request-auth.js';
import type { JobKind } from '../core/job.js';
import type { ApiContext } from './context.js';
import { listParams } from './params.js';
import { jobToWire } from './wire.js';

type Query = Record<string, string | string[] | undefined>;

/**
 * One page of jobs in Apify's list envelope `{data: {total, offset, limit, desc, count, items}}`.
 * Ascending by `startedAt` by default, so paging forward stays stable while new jobs start.
 */
export async function listJobs(ctx: ApiContext, req: FastifyRequest, scope: { userId: string; kind: JobKind; actId?: string }) {
  const { offset, limit, desc, statuses } = listParams(req.query as Query);
  const page = await ctx.service.store.listJobs({ ...scope, statuses, offset, limit, desc });
  const now = Date.now();
  return {
    data: { total: page.total, offset, limit, desc, count: page.items.length, items: page.items.map((j) => jobToWire(j, { now })) },
  };
}

/** GET /v2/actor-builds, GET /v2/actor-runs: the token's user's jobs of that kind. */
export const listOwnJobs = (ctx: ApiContext, kind: JobKind) => (req: FastifyRequest) =>
  listJobs(ctx, req, { userId: requireUser(req).id, kind });
