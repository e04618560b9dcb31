import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeRead } from '../auth/request-auth.js';
import { sectionToWire } from '../text/sections.js';
import type { ApiContext } from './context.js';
import { JOB_ID_PARAMS, jobIdParam } from './params.js';
import { jobResource, LOG_PATHS } from './routes.js';
import { data, errors } from './schemas.js';

const date = { type: ['string', 'null'], format: 'date-time' };
const SECTIONS = {
  type: 'object',
  properties: {
    items: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          title: { type: 'string' },
          depth: { type: 'integer', description: '0 for a top-level section' },
          start: { type: 'integer', description: 'the absolute offset of its start marker' },
          end: { type: ['integer', 'null'], description: 'the offset after its end marker; null while open' },
          startedAt: date,
          finishedAt: date,
          durationMillis: { type: ['integer', 'null'] },
          collapsed: { type: 'boolean' },
        },
      },
    },
  },
};

/** GET of a log's sections (GitLab section_start/section_end, GitHub ::group::), beside each log path. */
export function sectionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const [kind, path, what] of LOG_PATHS) {
    jobResource(app, kind, `${path}/sections`, {
      GET: {
        schema: {
          summary: `Get the sections of ${what}`,
          description: 'GitLab section_start/section_end and GitHub ::group::/::endgroup:: markers, in log order (ours).',
          tags: ['Sections'],
          params: JOB_ID_PARAMS,
          response: { 200: data(SECTIONS, 'the sections found so far'), ...errors(401, 403, 404, 429) },
        },
        handler: async (req: FastifyRequest) => {
          const id = jobIdParam(req.params, kind);
          const job = await ctx.service.get(id, kind);
          authorizeRead(req, job, ctx.config.privateReads);
          const items = (await ctx.service.sections(job)).map(sectionToWire);
          return { data: { items } };
        },
      },
    });
  }
}
