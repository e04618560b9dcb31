import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { registerAuth, rejectUnknownTokens } from '../auth/request-auth.js';
import { registerRateLimits } from '../limits/rate-limit.js';
import { registerBodyDecoding, registerBodyParsers } from './body.js';
import type { ApiContext } from './context.js';
import { registerErrorHandling } from './errors.js';
import { jobRoutes } from './jobs.js';
import { logRoutes } from './logs.js';
import { producerRoutes } from './producer.js';
import { viewerRoutes } from './viewer.js';

/** The whole /v2 API on one Fastify instance. */
export async function registerApi(app: FastifyInstance, ctx: ApiContext): Promise<void> {
  registerErrorHandling(app, ctx.config.maxBodyBytes);
  // Browsers may call the API from any page, as Apify allows; preflights are answered on every path.
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    exposedHeaders: ['X-Log-Offset', 'X-Log-Length', 'Content-Range', 'ETag', 'Retry-After', 'X-RateLimit-Limit'],
    maxAge: 3600,
    // OPTIONS is in every Allow list, so a bare OPTIONS (no Origin) is answered too, not a text/plain 400.
    strictPreflight: false,
  });
  registerAuth(app, ctx.service.store);
  await registerRateLimits(app, {
    perResourcePerSecond: ctx.config.rateLimitPerResource,
    perClientPerMinute: ctx.config.rateLimitPerClient,
  });
  rejectUnknownTokens(app);
  registerBodyDecoding(app);
  registerBodyParsers(app);
  logRoutes(app, ctx);
  jobRoutes(app, ctx);
  producerRoutes(app, ctx);
  await viewerRoutes(app);
}
