import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeRead, authorizeWrite, requireUser } from '../auth/request-auth.js';
import { recordNotFound } from '../core/errors.js';
import { NOT_FOUND_TEXT } from '../core/service.js';
import type { ApiContext } from './context.js';
import { booleanParam, jobIdParam, secondsParam } from './params.js';
import { JOB_COLLECTIONS, resource } from './routes.js';
import { jobToWire, userToWire } from './wire.js';
import { producerJobRoutes } from './producer.js';

type Query = Record<string, string | string[] | undefined>;

/** Reading, aborting and deleting builds and runs, and `users/me`. */
export function jobRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { service, config } = ctx;

  for (const [kind, base] of JOB_COLLECTIONS) {
    const notFound = () => recordNotFound(NOT_FOUND_TEXT[kind]);

    resource(app, `${base}/:id`, {
      GET: async (req: FastifyRequest) => {
        const id = jobIdParam(req.params, notFound);
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
      PUT: producerJobRoutes(ctx, kind).put,
      DELETE: async (req: FastifyRequest, reply) => {
        const job = await service.get(jobIdParam(req.params, notFound), kind);
        authorizeWrite(req, job);
        await service.delete(job);
        return reply.code(204).send();
      },
    });

    resource(app, `${base}/:id/abort`, {
      POST: async (req: FastifyRequest) => {
        const id = jobIdParam(req.params, notFound);
        const gracefully = kind === 'run' && booleanParam(req.query as Query, 'gracefully');
        const job = await service.get(id, kind);
        authorizeWrite(req, job);
        return { data: jobToWire(await service.abort(job, gracefully), { logStart: await service.logStart(job.id) }) };
      },
    });
  }

  resource(app, '/v2/users/me', {
    GET: async (req: FastifyRequest) => ({ data: userToWire(requireUser(req)) }),
  });
}
