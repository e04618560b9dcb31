import type { FastifyInstance } from 'fastify';
import { registerAuth, rejectUnknownTokens } from '../auth/request-auth.js';
import { registerRateLimits } from '../limits/rate-limit.js';
import { registerBodyDecoding, registerBodyParsers } from './body.js';
import type { ApiContext } from './context.js';
import { registerCors } from './cors.js';
import { registerErrorHandling } from './errors.js';
import { appendFastPath } from './append-fast-path.js';
import { logFastPath, type FastPath } from './fast-path.js';
import { jobRoutes } from './jobs.js';
import { actorRoutes } from './actors.js';
import { storageRoutes } from './storages.js';
import { logRoutes } from './logs.js';
import { searchRoutes } from './search.js';
import { registerOpenApi } from './openapi.js';
import { producerRoutes } from './producer.js';
import { sectionRoutes } from './sections.js';
import { viewerRoutes } from './viewer.js';

/**
 * The whole /v2 API on one Fastify instance. Returns the fast path the HTTP server tries first for GETs of
 * logs (none with private reads: those need the token checked) and for appends.
 */
export async function registerApi(app: FastifyInstance, ctx: ApiContext, isClosing: () => boolean): Promise<FastPath> {
  registerErrorHandling(app, ctx.config.maxBodyBytes);
  // First: it collects the routes registered after it.
  await registerOpenApi(app);
  await registerCors(app);
  registerAuth(app, (tokenHash) => ctx.service.userByTokenHash(tokenHash));
  const limits = registerRateLimits(app, {
    perResourcePerSecond: ctx.config.rateLimitPerResource,
    perClientPerMinute: ctx.config.rateLimitPerClient,
    shared: ctx.sharedCounts,
  });
  rejectUnknownTokens(app);
  registerBodyDecoding(app);
  registerBodyParsers(app);
  searchRoutes(app, ctx);
  logRoutes(app, ctx);
  jobRoutes(app, ctx);
  actorRoutes(app, ctx);
  storageRoutes(app);
  producerRoutes(app, ctx);
  sectionRoutes(app, ctx);
  await viewerRoutes(app);
  const warn = (err: Error) => app.log.warn({ err }, 'log response failed');
  const appends = appendFastPath(ctx, limits, isClosing, (err) => app.log.error({ err }, 'request failed'));
  if (ctx.config.privateReads) return appends;
  const reads = logFastPath(ctx, limits, isClosing, warn);
  // Reads first: that path counts every request on a connection (api/socket-follow.ts).
  return (req, res, fallback) => reads(req, res, fallback) || appends(req, res, fallback);
}
