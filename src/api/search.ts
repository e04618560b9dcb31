import type { FastifyInstance, FastifyRequest } from 'fastify';
import { requireUser } from '../auth/request-auth.js';
import { invalidInput } from './api-error.js';
import { searchTextProblem } from '../store/search-text.js';
import type { ApiContext } from './context.js';
import { JOB_LIST } from './lists.js';
import { integerParam, integerQuery, queryOf } from './params.js';
import { resource } from './routes.js';
import { data, errors, JOB } from './schemas.js';
import { jobToWire } from './wire.js';

type Query = Record<string, string | string[] | undefined>;

const MAX_LIMIT = 100;
const MAX_LINES = 50;

const HIT = {
  ...JOB,
  properties: {
    ...JOB.properties,
    kind: { enum: ['build', 'run'] },
    matches: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          line: { type: 'integer', description: '1-based, in the retained log (the viewer\'s #L numbers)' },
          offset: { type: 'integer', description: 'the absolute byte offset of the line' },
          text: { type: 'string' },
        },
      },
    },
    moreMatches: { type: 'boolean', description: 'more lines match than `lines`' },
  },
};

/** The search text: checked with the token before the other parameters (`q` has its own messages). */
async function searchText(req: FastifyRequest): Promise<void> {
  requireUser(req);
  const q = (req.query as Query).q;
  const problem = searchTextProblem(typeof q === 'string' ? q : '');
  if (problem) throw invalidInput(`Parameter "q" ${problem}.`);
}

/**
 * GET /v2/logs/search?q=… (buildlog's own, not Apify's): the token user's jobs whose retained log contains
 * `q` (case-insensitive), newest first, each with its first matching lines (`lines`, default 5), their
 * 1-based line numbers in the retained log (the viewer's `#L` numbers) and byte offsets.
 */
export function searchRoutes(app: FastifyInstance, ctx: ApiContext): void {
  resource(
    app,
    '/v2/logs/search',
    {
      GET: {
        schema: {
          summary: "Search the token user's logs",
          description: 'Newest first; each job with its first matching lines (ours).',
          tags: ['Search'],
          security: [{ bearer: [] }],
          querystring: queryOf({
            // Checked by searchText (its messages say what is wrong); here it is described.
            q: { description: 'the text to find, case-insensitive: 3 to 200 characters, no line break' },
            offset: integerQuery('jobs to skip (default 0)'),
            limit: integerQuery(`jobs per page (default 20, at most ${MAX_LIMIT})`),
            lines: integerQuery(`matching lines per job (default 5, at most ${MAX_LINES})`),
          }),
          response: { 200: data({ ...JOB_LIST, properties: { ...JOB_LIST.properties, items: { type: 'array', items: HIT } } }, 'one page of jobs'), ...errors(400, 401, 403, 429) },
        },
        handler: async (req: FastifyRequest) => {
          const user = requireUser(req);
          const query = req.query as Query;
          const text = query.q as string;
          const offset = integerParam(query, 'offset', 0);
          const limit = Math.min(integerParam(query, 'limit', 0) || 20, MAX_LIMIT);
          const linesPerJob = Math.min(integerParam(query, 'lines', 0) || 5, MAX_LINES);
          const page = await ctx.service.searchLogs({ userId: user.id, text, offset, limit, linesPerJob });
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
      },
    },
    { preValidation: searchText },
  );
}
