import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { authorizeWrite, requireUser } from '../auth/request-auth.js';
import { permissionDenied, invalidInput } from './api-error.js';
import type { JobKind, JobStatus } from '../core/job.js';
import type { UserRecord } from '../store/store.js';
import { jsonBodyOnly } from './body.js';
import type { ApiContext } from './context.js';
import { JOB_ID_PARAMS, jobIdParam } from './params.js';
import { JOB_COLLECTIONS, jobResource, resource, type Operation } from './routes.js';
import { createJobBody, data, errors, JOB, SET_STATUS_BODY } from './schemas.js';
import { jobToWire } from './wire.js';
import { listOwnJobs } from './lists.js';

/** The append's route, and the pattern its schema gives `X-Log-Offset` (api/append-fast-path.ts takes the same). */
export const APPEND_ROUTE = '/v2/logs/:id/chunks';
export const LOG_OFFSET_PATTERN = '^\\s*\\d{1,15}\\s*$';

const APPEND_RESULT = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    offset: { type: 'integer', description: 'where the chunk starts' },
    length: { type: 'integer', description: 'the log\'s length after it' },
    duplicate: { type: 'boolean', description: 'the chunk was stored already (a retry)' },
  },
};

/** A JSON body as an object; absent (or `null`) is an empty one. Its shape is checked by the route's schema. */
function objectBody(body: unknown): Record<string, unknown> {
  return (body ?? {}) as Record<string, unknown>;
}

/** A string field the schema has checked; null is the same as absent. */
const optionalString = (body: Record<string, unknown>, key: string) => (body[key] ?? undefined) as string | undefined;

/** An object field the schema has checked, bounded here in size (which a schema cannot say). */
function optionalObject(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  let size: number;
  try {
    size = JSON.stringify(v).length;
  } catch {
    // A JSON body nested deeper than the stack parses, but cannot be serialised again.
    throw invalidInput(`Field "${key}" is nested too deeply.`);
  }
  if (size > 16 * 1024) throw invalidInput(`Field "${key}" is larger than 16 KiB.`);
  return v as Record<string, unknown>;
}

/** `actId` as `name` or Apify's `username~name` (the token's own username; the schema checked both): stored as the name. */
function actorName(body: Record<string, unknown>, user: UserRecord): string | undefined {
  const ref = optionalString(body, 'actId');
  if (ref === undefined || !ref.includes('~')) return ref;
  const [username, name] = ref.split('~');
  if (username !== user.username) {
    throw permissionDenied(`Field "actId" names an actor of user "${username}"; jobs may only be created for the token's own actors.`);
  }
  return name;
}

/** PUT of a job's status (the producer finishing it), on the same path as the job's GET. */
export function producerJobRoutes(ctx: ApiContext, kind: JobKind): Operation {
  return {
    schema: {
      summary: `Set a ${kind}'s status (producer)`,
      description: 'Statuses follow Apify\'s lifecycle; a terminal status is final; repeating the current one is a no-op.',
      tags: ['Producing'],
      security: [{ bearer: [] }],
      params: JOB_ID_PARAMS,
      body: SET_STATUS_BODY,
      response: { 200: data(JOB, `the ${kind} object`), ...errors(400, 401, 403, 404, 409, 415) },
    },
    preValidation: [jsonBodyOnly],
    handler: async (req: FastifyRequest) => {
      const id = jobIdParam(req.params, kind);
      const body = objectBody(req.body);
      const message = body.statusMessage as string | null | undefined;
      const exitCode = body.exitCode as number | null | undefined;
      const job = await ctx.service.get(id, kind);
      authorizeWrite(req, job);
      const patch = {
        status: body.status as JobStatus,
        ...(message !== undefined ? { statusMessage: message } : {}),
        ...(exitCode !== undefined ? { exitCode } : {}),
      };
      const proof = { length: body.logLength as number | undefined, crc32: body.logCrc32 as number | undefined };
      const updated = await ctx.service.finishVerified(job, patch, proof);
      return { data: jobToWire(updated, { logStart: await ctx.service.logStart(updated.id) }) };
    },
  };
}

/** The producer side (ours, not Apify's): create a job, append to its log. */
export function producerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { service, config } = ctx;

  for (const [kind, base] of JOB_COLLECTIONS) {
    resource(
      app,
      base,
      {
        GET: listOwnJobs(ctx, kind),
        POST: {
          schema: {
            summary: `Create a ${kind} (producer)`,
            description: `Owned by the token's user; in status RUNNING (or READY) with startedAt. A JSON body is optional.`,
            tags: ['Producing'],
            security: [{ bearer: [] }],
            body: createJobBody(kind),
            response: { 201: data(JOB, `the new ${kind}; Location names it`), ...errors(400, 401, 403, 415) },
          },
          // Without a token the answer is 401 whatever the body holds, as before the body is looked at.
          preValidation: [jsonBodyOnly, async (req: FastifyRequest) => void requireUser(req)],
          handler: async (req: FastifyRequest, reply: FastifyReply) => {
            const body = objectBody(req.body);
            const user = requireUser(req);
            const job = await service.create({
              kind,
              user,
              actId: actorName(body, user),
              buildNumber: optionalString(body, 'buildNumber'),
              buildId: kind === 'run' ? optionalString(body, 'buildId') : undefined,
              origin: optionalString(body, 'origin'),
              meta: optionalObject(body, 'meta'),
              options: optionalObject(body, 'options'),
              status: body.status as 'READY' | 'RUNNING' | undefined,
            });
            reply.code(201).header('Location', `${base}/${job.id}`);
            return { data: jobToWire(job, { logStart: 0 }) };
          },
        },
      },
    );
  }

  // Appends take the body as raw bytes whatever its Content-Type, so this path gets its own parsers.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    jobResource(scope, 'any', APPEND_ROUTE, {
      POST: {
        schema: {
          summary: 'Append to a log (producer)',
          description:
            'The body\'s bytes, of any Content-Type, optionally compressed (Content-Encoding gzip, deflate or br). ' +
            'With X-Log-Offset N, N must be the current length; a chunk already stored whole at N is a no-op (`duplicate`).',
          tags: ['Producing'],
          security: [{ bearer: [] }],
          params: JOB_ID_PARAMS,
          headers: {
            type: 'object',
            properties: {
              'x-log-offset': { type: 'string', pattern: LOG_OFFSET_PATTERN, description: 'where the chunk starts in the log', 'x-expects': 'a non-negative integer' },
            },
          },
          // Documentation only: no request has this media type, so nothing is validated (the bytes are the log's).
          body: { content: { '*/*': { schema: { type: 'string', format: 'binary', description: 'the bytes to append' } } } },
          response: {
            200: data(APPEND_RESULT, 'appended (X-Log-Length: the log\'s length now)'),
            ...errors(400, 401, 403, 404, 413, 415, 429, 503, 507),
          },
        },
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          const id = jobIdParam(req.params, 'any');
          const offsetHeader = req.headers['x-log-offset'] as string | undefined;
          const offset = offsetHeader === undefined ? undefined : Number(offsetHeader);
          const data = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
          const job = await service.get(id, 'any');
          authorizeWrite(req, job);
          const result = await service.append(job, data, offset);
          reply.header('X-Log-Length', String(result.end));
          return { data: { id, offset: result.start, length: result.end, duplicate: result.duplicate } };
        },
      },
    });
  });
}
