import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authorizeWrite, requireUser } from '../auth/request-auth.js';
import { invalidInput, permissionDenied, recordNotFound } from '../core/errors.js';
import type { UserRecord } from '../store/store.js';
import { isJobStatus, type JobKind, type JobStatus } from '../core/job.js';
import { NOT_FOUND_TEXT } from '../core/service.js';
import type { ApiContext } from './context.js';
import { jobIdParam } from './params.js';
import { JOB_COLLECTIONS, resource } from './routes.js';
import { jobToWire } from './wire.js';
import { listOwnJobs } from './lists.js';
import { ACTOR_NAME } from './actors.js';

const PRODUCER_STATUSES: JobStatus[] = ['RUNNING', 'ABORTING', 'TIMING-OUT', 'SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED'];

function objectBody(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw invalidInput('The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function optionalString(body: Record<string, unknown>, key: string, pattern: RegExp, what: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !pattern.test(v)) throw invalidInput(`Field "${key}" must be ${what}.`);
  return v;
}

function optionalObject(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw invalidInput(`Field "${key}" must be a JSON object.`);
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

/** `actId` as `name` or Apify's `username~name` (the token's own username): stored as the name. */
function actorName(body: Record<string, unknown>, user: UserRecord): string | undefined {
  const what = 'an actor name of letters, digits, ".", "_" or "-", optionally as "username~name"';
  const ref = optionalString(body, 'actId', /^[^~]*~?[^~]*$/, what);
  if (ref === undefined) return undefined;
  const [username, name] = ref.includes('~') ? ref.split('~') : [undefined, ref];
  if (!ACTOR_NAME.test(name!) || (username !== undefined && !ACTOR_NAME.test(username))) throw invalidInput(`Field "actId" must be ${what}.`);
  if (username !== undefined && username !== user.username) {
    throw permissionDenied(`Field "actId" names an actor of user "${username}"; jobs may only be created for the token's own actors.`);
  }
  return name;
}

/** PUT of a job's status (the producer finishing it), shared with the GET on the same path. */
export function producerJobRoutes(ctx: ApiContext, kind: JobKind) {
  return {
    put: async (req: FastifyRequest) => {
      const id = jobIdParam(req.params, () => recordNotFound(NOT_FOUND_TEXT[kind]));
      const body = objectBody(req.body);
      const status = body.status;
      if (!isJobStatus(status) || !PRODUCER_STATUSES.includes(status)) {
        throw invalidInput(`Field "status" must be one of ${PRODUCER_STATUSES.join(', ')}.`);
      }
      const message = body.statusMessage;
      if (message !== undefined && message !== null && (typeof message !== 'string' || message.length > 2000)) {
        throw invalidInput('Field "statusMessage" must be a string of at most 2000 characters.');
      }
      const exitCode = body.exitCode;
      if (exitCode !== undefined && exitCode !== null && !Number.isInteger(exitCode)) {
        throw invalidInput('Field "exitCode" must be an integer.');
      }
      const logLength = body.logLength;
      if (logLength !== undefined && !(Number.isSafeInteger(logLength) && (logLength as number) >= 0)) {
        throw invalidInput('Field "logLength" must be a non-negative integer: the bytes appended in all.');
      }
      const logCrc32 = body.logCrc32;
      if (logCrc32 !== undefined && !(Number.isInteger(logCrc32) && (logCrc32 as number) >= 0 && (logCrc32 as number) <= 0xffffffff)) {
        throw invalidInput('Field "logCrc32" must be an unsigned 32-bit integer: the CRC-32 of every byte appended.');
      }
      const job = await ctx.service.get(id, kind);
      authorizeWrite(req, job);
      const patch = {
        status,
        ...(message !== undefined ? { statusMessage: message as string | null } : {}),
        ...(exitCode !== undefined ? { exitCode: exitCode as number | null } : {}),
      };
      const updated = await ctx.service.finishVerified(job, patch, { length: logLength as number | undefined, crc32: logCrc32 as number | undefined });
      return { data: jobToWire(updated, { logStart: await ctx.service.logStart(updated.id) }) };
    },
  };
}

/** The producer side (ours, not Apify's): create a job, append to its log. */
export function producerRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const { service, config } = ctx;

  for (const [kind, base] of JOB_COLLECTIONS) {
    resource(app, base, {
      GET: listOwnJobs(ctx, kind),
      POST: async (req: FastifyRequest, reply) => {
        const user = requireUser(req);
        const body = objectBody(req.body);
        const initial = body.status;
        if (initial !== undefined && initial !== 'READY' && initial !== 'RUNNING') {
          throw invalidInput('Field "status" of a new job must be READY or RUNNING.');
        }
        const job = await service.create({
          kind,
          user,
          actId: actorName(body, user),
          buildNumber: optionalString(body, 'buildNumber', /^[\w.-]{1,32}$/, 'a version such as "0.1.1"'),
          buildId: kind === 'run' ? optionalString(body, 'buildId', /^[A-Za-z0-9]{1,64}$/, 'a build id') : undefined,
          origin: optionalString(body, 'origin', /^[A-Z_]{1,32}$/, 'an origin such as API, CLI or CI'),
          meta: optionalObject(body, 'meta'),
          options: optionalObject(body, 'options'),
          status: initial,
        });
        reply.code(201).header('Location', `${base}/${job.id}`);
        return { data: jobToWire(job, { logStart: 0 }) };
      },
    });
  }

  // Appends take the body as raw bytes whatever its Content-Type, so this path gets its own parsers.
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: config.maxBodyBytes }, (_req, body, done) =>
      done(null, body),
    );
    resource(scope, '/v2/logs/:id/chunks', {
      POST: async (req: FastifyRequest, reply) => {
        const id = jobIdParam(req.params, () => recordNotFound(NOT_FOUND_TEXT.any));
        const offsetHeader = req.headers['x-log-offset'];
        let offset: number | undefined;
        if (offsetHeader !== undefined) {
          if (typeof offsetHeader !== 'string' || !/^\d{1,15}$/.test(offsetHeader.trim())) {
            throw invalidInput('Header "X-Log-Offset" must be a non-negative integer.');
          }
          offset = Number(offsetHeader);
        }
        const data = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
        const job = await service.get(id, 'any');
        authorizeWrite(req, job);
        const result = await service.append(job, data, offset);
        reply.header('X-Log-Length', String(result.end));
        return { data: { id, offset: result.start, length: result.end, duplicate: result.duplicate } };
      },
    });
  });
}
