import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../auth/request-auth.js';
import { invalidInput } from '../core/errors.js';
import { searchTextProblem } from '../store/search-text.js';
import type { ApiContext } from './context.js';
import { integerParam } from './params.js';
import { resource } from './routes.js';
import { jobToWire } from './wire.js';

type Query = Record<string, string | string[] | undefined>;

const MAX_LIMIT = 100;
const MAX_LINES = 50;

/**
 * GET /v2/logs/search?q=… (buildlog's own, not Apify's): the token user's jobs whose retained log contains
 * `q` (case-insensitive), newest first, each with its first matching lines (`lines`, default 5), their
 * 1-based line numbers in the retained log (the viewer's `#L` numbers) and byte offsets.
 */
export function searchRoutes(app: FastifyInstance, ctx: ApiContext): void {
  resource(app, '/v2/logs/search', {
    GET: async (req: FastifyRequest) => {
      const user = requireUser(req);
      const query = req.query as Query;
      const text = typeof query.q === 'string' ? query.q : '';
      const problem = searchTextProblem(text);
      if (problem) throw invalidInput(`Parameter "q" ${problem}.`);
      const offset = integerParam(query, 'offset', 0);
      const limit = Math.min(integerParam(query, 'limit', 0) || 20, MAX_LIMIT);
      const linesPerJob = Math.min(integerParam(query, 'lines', 0) || 5, MAX_LINES);
      const page = await ctx.service.store.searchLogs({ userId: user.id, text, offset, limit, linesPerJob });
      const now = Date.now();
      return {
        data: {
          total: page.total,
          offset,
          limit,
          count: page.hits.length,
          items: page.hits.map((hit) => ({
            ...jobToWire(hit.job, { now }),
            kind: hit.job.kind,
            matches: hit.lines,
            moreMatches: hit.moreLines,
          })),
        },
      };
    },
  });
}
