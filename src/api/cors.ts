import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

const EXPOSED_HEADERS = ['X-Log-Offset', 'X-Log-Length', 'Content-Range', 'ETag', 'Retry-After', 'X-RateLimit-Limit'];

/** What @fastify/cors (below) adds to every response that is not a preflight, for paths answered without it. */
export const CORS_RESPONSE_HEADERS = {
  'access-control-allow-origin': '*',
  'access-control-expose-headers': EXPOSED_HEADERS.join(', '),
} as const;

/** Browsers may call the API from any page, as Apify allows; preflights are answered on every path. */
export async function registerCors(app: FastifyInstance): Promise<void> {
  await app.register(cors, {
    origin: '*',
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH'],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 3600,
    // OPTIONS is in every Allow list, so a bare OPTIONS (no Origin) is answered too, not a text/plain 400.
    strictPreflight: false,
  });
}
