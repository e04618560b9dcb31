import type { FastifyInstance, FastifyRequest } from 'fastify';
import { permissionDenied, tokenNotValid, tokenRequired } from '../api/api-error.js';
import type { JobRecord } from '../core/job.js';
import { isOpsRequest } from '../ops/route-flag.js';
import type { UserRecord } from '../store/store.js';
import { hashToken } from './tokens.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The token's user; null when no token was sent. */
    user: UserRecord | null;
    /** A token was sent that no user owns (refused by `rejectUnknownTokens`). */
    unknownToken: boolean;
  }
}

/** The token of a well-formed `Authorization: Bearer <token>` header, else null. */
export function bearerToken(header: string): string | null {
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1] ?? null;
}

/** The token from `Authorization: Bearer <token>` or `?token=`; the header wins. */
function tokenOf(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  // A malformed header is an invalid token, not an absent one.
  if (header) return bearerToken(header) ?? (header.trim() || undefined);
  const query = (req.query as Record<string, unknown> | undefined)?.token;
  return typeof query === 'string' && query !== '' ? query : undefined;
}

/** Resolves the token of every request once (a token that is sent but unknown is refused by `rejectUnknownTokens`). */
export function registerAuth(app: FastifyInstance, userByTokenHash: (tokenHash: string) => Promise<UserRecord | null>): void {
  app.decorateRequest('user', null);
  app.decorateRequest('unknownToken', false);
  app.addHook('onRequest', async (req) => {
    const token = tokenOf(req);
    if (token === undefined || isOpsRequest(req)) return;
    const user = await userByTokenHash(hashToken(token));
    if (user) req.user = user;
    else req.unknownToken = true;
  });
}

/**
 * A token that is sent but unknown is 401 everywhere. Registered after the rate limits, so that requests
 * with made-up tokens count against their address like any other (guessing tokens is throttled too).
 */
export function rejectUnknownTokens(app: FastifyInstance): void {
  app.addHook('onRequest', async (req) => {
    if (req.unknownToken) throw tokenNotValid();
  });
}

export function requireUser(req: FastifyRequest): UserRecord {
  if (!req.user) throw tokenRequired();
  return req.user;
}

/** Reads are open by id unless the server is private; then only the owner may read. */
export function authorizeRead(req: FastifyRequest, job: Pick<JobRecord, 'userId'>, privateReads: boolean): void {
  if (!privateReads) return;
  const user = requireUser(req);
  if (user.id !== job.userId) throw permissionDenied();
}

export function authorizeWrite(req: FastifyRequest, job: JobRecord): UserRecord {
  const user = requireUser(req);
  if (user.id !== job.userId) throw permissionDenied();
  return user;
}
