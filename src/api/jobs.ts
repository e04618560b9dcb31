import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorizeRead, authorizeWrite, requireUser } from '../auth/request-auth.js';
import type { ApiContext } from './context.js';
import { booleanParam, booleanQuery, JOB_ID_PARAMS, jobIdParam, queryOf, secondsParam, secondsQuery } from './params.js';
import { JOB_COLLECTIONS, jobResource, resource } from './routes.js';
import { data, errors, JOB } from './schemas.js';
import { jobToWire, userToWire } from './wire.js';
import { producerJobRoutes } from './producer.js';

const USER = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    username: { type: 'string' },
    profile: { type: 'object' },
    proxy: { type: 'object', properties: { password: { type: 'string' }, groups: { type: 'array' } } },
    plan: { type: 'object' },
  },
};

type Query = Record<string, string | string[] | undefined>;

/** Reading, aborting and deleting builds and runs, and `users/me`. */
export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { service, config } = ctx;

  for (const [kind, base] of JOB_COLLECTIONS) {
    jobResource(app, kind, `${base}/:id`, {
      GET: {
        schema: {
          summary: `Get a ${kind}`,
          tags: ['Apify'],
          params: JOB_ID_PARAMS,
          querystring: queryOf({
            waitForFinish: secondsQuery('hold the answer until the job is finished or this many seconds pass (at most 60)'),
          }),
          response: { 200: data(JOB, `the ${kind} object`), ...errors(400, 401, 403, 404) },
        },
        handler: async (req: FastifyRequest) => {
        const id = jobIdParam(req.params, kind);
        const waitSecs = secondsParam(req.query as Query, 'waitForFinish');
        let job = await service.get(id, kind);
        authorizeRead(req, job, config.privateReads);
        if (waitSecs > 0) {
          const gone = new AbortController();
          const onClose = () => gone.abort();
          req.raw.socket.once('close', onClose);
          try {
            job = await service.waitForFinish(job, waitSecs, gone.signal);
          } finally {
            req.raw.socket.off('close', onClose);
          }
        }
        return { data: jobToWire(job, { logStart: await service.logStart(job.id) }) };
        },
      },
      PUT: producerJobRoutes(ctx, kind),
      DELETE: {
        schema: {
          summary: `Delete a ${kind}`,
          description: 'Owner\'s token. The job and its log are gone; its id answers 404 from then on.',
          tags: ['Apify'],
          security: [{ bearer: [] }],
          params: JOB_ID_PARAMS,
          response: { 204: { description: 'deleted', type: 'null' }, ...errors(401, 403, 404) },
        },
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          const job = await service.get(jobIdParam(req.params, kind), kind);
          authorizeWrite(req, job);
          await service.delete(job);
          return reply.code(204).send();
        },
      },
    });

    jobResource(app, kind, `${base}/:id/abort`, {
      POST: {
        schema: {
          summary: `Abort a ${kind}`,
          description: 'Owner\'s token. On a finished job it changes nothing and returns the object.',
          tags: ['Apify'],
          security: [{ bearer: [] }],
          params: JOB_ID_PARAMS,
          ...(kind === 'run'
            ? { querystring: queryOf({ gracefully: booleanQuery('ABORTING first; ABORTED after --graceful-abort-secs unless the producer finishes') }) }
            : {}),
          response: { 200: data(JOB, `the ${kind} object`), ...errors(400, 401, 403, 404) },
        },
        handler: async (req: FastifyRequest) => {
          const id = jobIdParam(req.params, kind);
          const gracefully = kind === 'run' && booleanParam(req.query as Query, 'gracefully');
          const job = await service.get(id, kind);
          authorizeWrite(req, job);
          return { data: jobToWire(await service.abort(job, gracefully), { logStart: await service.logStart(job.id) }) };
        },
      },
    });
  }

  resource(app, '/v2/users/me', {
    GET: {
      schema: {
        summary: 'The token\'s user',
        tags: ['Apify'],
        security: [{ bearer: [] }],
        response: { 200: data(USER, 'the user, as `apify login` reads it'), ...errors(401) },
      },
      handler: async (req: FastifyRequest) => ({ data: userToWire(requireUser(req)) }),
    },
  });
}
