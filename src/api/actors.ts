import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorizeRead, requireUser } from '../auth/request-auth.js';
import { jobNotFound, permissionDenied, recordNotFound } from './api-error.js';
import type { JobKind, JobRecord } from '../core/job.js';
import type { JobService } from '../core/service.js';
import type { UserRecord } from '../store/store.js';
import { ACTOR_NAME_PATTERN } from './schemas.js';
import type { ApiContext } from './context.js';
import { listJobs, listSchema } from './lists.js';
import { LOG_QUERY, LOG_RESPONSES, serveLog } from './logs.js';
import { queryOf, statusesParam, statusesQuery } from './params.js';
import { resource } from './routes.js';
import { data, errors, JOB } from './schemas.js';
import { jobToWire } from './wire.js';

type Query = Record<string, string | string[] | undefined>;

/** What a producer may call an actor, and what a path may name. */
export const ACTOR_NAME = new RegExp(`^${ACTOR_NAME_PATTERN}$`);

const actorNotFound = () => recordNotFound('Actor was not found');

/**
 * An actor reference as Apify has them: `username~name` (apify-client turns `username/name` into that) or
 * the actor's id. buildlog derives actors from the jobs' `actId`, so an actor's id is its name.
 */
export function parseActorRef(ref: string): { username?: string; name: string } {
  const tilde = ref.indexOf('~');
  const [username, name] = tilde >= 0 ? [ref.slice(0, tilde), ref.slice(tilde + 1)] : [undefined, ref];
  if (!ACTOR_NAME.test(name) || (username !== undefined && !ACTOR_NAME.test(username))) throw actorNotFound();
  return username === undefined ? { name } : { username, name };
}

/** The newest job of an actor, builds first (what makes an actor exist). */
async function newestJob(service: JobService, name: string, userId?: string): Promise<{ build: JobRecord | null; latest: JobRecord | null }> {
  const build = await service.latestJob(name, 'build', userId);
  return { build, latest: build ?? (await service.latestJob(name, 'run', userId)) };
}

/**
 * The token's own actor named by the path, for the lists and the last run: job ids are read
 * capabilities, so they are listed to their owner only (403 for another user's actor).
 */
async function ownActor(service: JobService, req: FastifyRequest): Promise<{ user: UserRecord; name: string }> {
  const user = requireUser(req);
  const { username, name } = parseActorRef((req.params as { actorId: string }).actorId);
  if (username !== undefined && username !== user.username) {
    if (!(await service.userByName(username))) throw actorNotFound();
    throw permissionDenied('The actor belongs to another user; only its owner may list its jobs.');
  }
  if (!(await newestJob(service, name, user.id)).latest) throw actorNotFound();
  return { user, name };
}

/** `apify builds ls` groups builds by version (major.minor of the build number) and shows each version's tag. */
function versionsOf(buildNumbers: string[]) {
  const versions = new Set(buildNumbers.map((n) => n.split('.').slice(0, 2).join('.')));
  return [...versions].map((versionNumber) => ({ versionNumber, buildTag: 'latest', sourceType: 'SOURCE_FILES' }));
}

/** GET /v2/actors/:actorId: the actor derived from its jobs. Versions and tags only for its owner. */
async function actorObject(ctx: ApiContext, req: FastifyRequest) {
  const { service, config } = ctx;
  const { username, name } = parseActorRef((req.params as { actorId: string }).actorId);
  const owner = username === undefined ? undefined : await service.userByName(username);
  if (owner === null) throw actorNotFound();
  // A bare name means the caller's own actor first, then anyone's (names are not unique across users).
  const candidates = owner ? [owner.id] : [...(req.user ? [req.user.id] : []), undefined];
  let found: { build: JobRecord | null; latest: JobRecord | null } = { build: null, latest: null };
  for (const userId of candidates) {
    found = await newestJob(service, name, userId);
    if (found.latest) break;
  }
  const { build, latest } = found;
  if (!latest) throw actorNotFound();
  authorizeRead(req, latest, config.privateReads);
  const user = owner ?? (await service.userById(latest.userId));
  const mine = req.user?.id === latest.userId;
  return {
    data: {
      id: latest.actId,
      name: latest.actId,
      username: user?.username ?? null,
      userId: latest.userId,
      versions: mine ? versionsOf(await service.buildNumbers(latest.userId, latest.actId)) : [],
      taggedBuilds:
        mine && build
          ? { latest: { buildId: build.id, buildNumber: build.buildNumber, finishedAt: build.finishedAt && new Date(build.finishedAt).toISOString() } }
          : {},
    },
  };
}

/** The actor's newest run (of a status, if given), or Apify's 404 for runs. */
async function lastRun(ctx: ApiContext, req: FastifyRequest): Promise<JobRecord> {
  const { user, name } = await ownActor(ctx.service, req);
  const statuses = statusesParam(req.query as Query);
  const { items } = await ctx.service.listJobs({ userId: user.id, kind: 'run', actId: name, statuses, offset: 0, limit: 1, desc: true });
  if (!items[0]) throw jobNotFound('run');
  return items[0];
}

const ACTOR = {
  type: 'object',
  properties: {
    id: { type: 'string', description: 'its name: actors are derived from their jobs\' actId' },
    name: { type: 'string' },
    username: { type: ['string', 'null'] },
    userId: { type: 'string' },
    versions: { type: 'array', description: 'for its owner: the major.minor versions of its builds' },
    taggedBuilds: { type: 'object', description: 'for its owner: `latest`, the newest build (`buildId`, `buildNumber`, `finishedAt`)' },
  },
};

const ACTOR_PARAMS = {
  type: 'object',
  properties: { actorId: { type: 'string', description: 'an actor name, or `username~name`' } },
  required: ['actorId'],
};

/**
 * Every /v2/acts/… path is also served as /v2/actors/… (apify-client 2.23.4+ uses that prefix). The paths
 * below an actor are its owner's: the token and the actor are checked before the query's schema (a
 * `preValidation` hook), so a stranger gets 401/403/404 whatever the query holds.
 */
export function actorRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const owned = new WeakMap<FastifyRequest, { user: UserRecord; name: string }>();
  const ownedBy = { preValidation: async (req: FastifyRequest) => void owned.set(req, await ownActor(ctx.service, req)) };
  const lastRuns = new WeakMap<FastifyRequest, JobRecord>();
  const lastRunOf = { preValidation: async (req: FastifyRequest) => void lastRuns.set(req, await lastRun(ctx, req)) };
  const runStatus = { status: statusesQuery('only runs in these statuses') };

  for (const prefix of ['/v2/actors', '/v2/acts']) {
    resource(app, `${prefix}/:actorId`, {
      GET: {
        schema: {
          summary: 'Get an actor (derived from its jobs\' actId)',
          tags: ['Apify'],
          params: ACTOR_PARAMS,
          response: { 200: data(ACTOR, 'a minimal actor object'), ...errors(401, 403, 404) },
        },
        handler: (req) => actorObject(ctx, req),
      },
    });
    for (const kind of ['build', 'run'] as JobKind[]) {
      resource(
        app,
        `${prefix}/:actorId/${kind}s`,
        {
          GET: {
            schema: { ...listSchema(kind, "an actor's"), params: ACTOR_PARAMS },
            handler: (req) => {
              const { user, name } = owned.get(req)!;
              return listJobs(ctx, req, { userId: user.id, kind, actId: name });
            },
          },
        },
        ownedBy,
      );
    }
    resource(
      app,
      `${prefix}/:actorId/runs/last`,
      {
        GET: {
          schema: {
            summary: "Get an actor's last run",
            tags: ['Apify'],
            security: [{ bearer: [] }],
            params: ACTOR_PARAMS,
            querystring: queryOf(runStatus),
            response: { 200: data(JOB, 'the newest run (of these statuses)'), ...errors(400, 401, 403, 404) },
          },
          handler: async (req) => {
            const run = lastRuns.get(req)!;
            return { data: jobToWire(run, { logStart: await ctx.service.logStart(run.id) }) };
          },
        },
      },
      lastRunOf,
    );
    resource(
      app,
      `${prefix}/:actorId/runs/last/log`,
      {
        GET: {
          schema: {
            summary: "Get the log of an actor's last run",
            tags: ['Apify'],
            security: [{ bearer: [] }],
            params: ACTOR_PARAMS,
            querystring: queryOf({ ...runStatus, ...LOG_QUERY.properties }),
            response: LOG_RESPONSES,
          },
          handler: (req: FastifyRequest, reply: FastifyReply) => serveLog(ctx, 'run', req, reply, lastRuns.get(req)!.id),
        },
      },
      lastRunOf,
    );
  }
}
