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

/** Reading and aborting builds and runs, the derived actor object, and `users/me`. */
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
        return { data: jobToWire(job) };
      },
      PUT: producerJobRoutes(ctx, kind).put,
    });

    resource(app, `${base}/:id/abort`, {
      POST: async (req: FastifyRequest) => {
        const id = jobIdParam(req.params, notFound);
        const gracefully = kind === 'run' && booleanParam(req.query as Query, 'gracefully');
        const job = await service.get(id, kind);
        authorizeWrite(req, job);
        return { data: jobToWire(await service.abort(job, gracefully)) };
      },
    });
  }

  const actorHandler = async (req: FastifyRequest) => {
    const notFound = () => recordNotFound('Actor was not found');
    const ref = (req.params as { actorId: string }).actorId;
    // Actors may be addressed as `username~name`, as the clients do for `actor('user/name')`.
    const [username, name] = ref.includes('~') ? ref.split('~', 2) : [undefined, ref];
    const owner = username === undefined ? undefined : await service.store.userByName(username);
    if (owner === null) throw notFound();
    // A bare name means the caller's own actor first, then anyone's (names are not unique across users).
    const candidates = owner ? [owner.id] : [...(req.user ? [req.user.id] : []), undefined];
    let build = null;
    let latest = null;
    for (const userId of candidates) {
      build = await service.store.latestJob(name!, 'build', userId);
      latest = build ?? (await service.store.latestJob(name!, 'run', userId));
      if (latest) break;
    }
    if (!latest) throw notFound();
    authorizeRead(req, latest, config.privateReads);
    const user = owner ?? (await service.store.userById(latest.userId));
    return {
      data: {
        id: latest.actId,
        name: latest.actId,
        username: user?.username ?? null,
        userId: latest.userId,
        taggedBuilds: build
          ? { latest: { buildId: build.id, buildNumber: build.buildNumber, finishedAt: build.finishedAt && new Date(build.finishedAt).toISOString() } }
          : {},
      },
    };
  };
  resource(app, '/v2/actors/:actorId', { GET: actorHandler });
  // The clients before 2.23.4 used /v2/acts/, still a documented alias.
  resource(app, '/v2/acts/:actorId', { GET: actorHandler });

  resource(app, '/v2/users/me', {
    GET: async (req: FastifyRequest) => ({ data: userToWire(requireUser(req)) }),
  });
}
