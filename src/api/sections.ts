import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeRead } from '../auth/request-auth.js';
import { recordNotFound } from '../core/errors.js';
import type { JobKind } from '../core/job.js';
import { NOT_FOUND_TEXT } from '../core/service.js';
import { sectionToWire } from '../text/sections.js';
import type { ApiContext } from './context.js';
import { jobIdParam } from './params.js';
import { resource } from './routes.js';

/** GET of a log's sections (GitLab section_start/section_end, GitHub ::group::), beside each log path. */
export function sectionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const handler = (kind: JobKind | 'any') => async (req: FastifyRequest) => {
    const id = jobIdParam(req.params, () => recordNotFound(NOT_FOUND_TEXT[kind]));
    const job = await ctx.service.get(id, kind);
    authorizeRead(req, job, ctx.config.privateReads);
    const items = (await ctx.service.sections(job)).map(sectionToWire);
    return { data: { items } };
  };
  resource(app, '/v2/actor-builds/:id/log/sections', { GET: handler('build') });
  resource(app, '/v2/actor-runs/:id/log/sections', { GET: handler('run') });
  resource(app, '/v2/logs/:id/sections', { GET: handler('any') });
}
