import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { resource } from './routes.js';
import { content } from './schemas.js';

/**
 * The browser pages: `GET /logs/:id` is the log viewer, `GET /` the dashboard, `/viewer/*` their assets (plain ES modules and CSS
 * from the repo's `web/` folder, no build step), `/viewer/vendor/ansi_up.js` the ANSI-to-HTML library's
 * own ES module from node_modules. Nothing is loaded from elsewhere: the page works offline.
 *
 * The page reads everything through the public /v2 API, so it needs no data from here: any id gets the
 * page, and the page shows "not found" from the API's 404 (it also keeps the id out of the HTML).
 */

/** web/ at the repository root, from src/api (tsx) or dist/api (compiled). */
function findWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'web');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    dir = dirname(dir);
  }
  throw new Error('buildlog: the viewer assets (web/index.html) were not found next to the server');
}

/**
 * The page's own protections: its scripts come only from this server (a log line can never become a
 * script, even if escaping failed), it calls only this server's API, and links in a log do not send the
 * page's address (which holds the job id, the capability to read the log) to other sites.
 * Inline style attributes are allowed: ANSI 256-colour and true-colour spans carry their colour in one.
 */
export const VIEWER_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function pageHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('Content-Security-Policy', VIEWER_CSP)
    .header('Referrer-Policy', 'no-referrer')
    .header('X-Content-Type-Options', 'nosniff')
    .header('X-Frame-Options', 'DENY')
    .header('Cache-Control', 'no-cache');
}

export async function viewerRoutes(app: FastifyInstance): Promise<void> {
  const webDir = findWebDir();
  const ansiUpDir = dirname(createRequire(import.meta.url).resolve('ansi_up'));

  await app.register(fastifyStatic, {
    root: webDir,
    prefix: '/viewer/',
    index: false,
    list: false,
    // Assets change with the server version; revalidating with the ETag costs one small round trip.
    cacheControl: true,
    maxAge: 0,
    // Only the page's scripts and styles (not index.html outside /logs/:id, nor the .d.ts for the tests).
    allowedPath: (pathName) => /^\/[\w-]+\.(js|css)$/.test(pathName),
    setHeaders: (res) => {
      res.setHeader('X-Content-Type-Options', 'nosniff');
    },
  });

  // The library's own ES module, as published (read once: a dependency does not change while we run).
  const ansiUp = await readFile(join(ansiUpDir, 'ansi_up.js'));
  resource(app, '/viewer/vendor/ansi_up.js', {
    GET: {
      schema: { summary: 'The viewer\'s ANSI-to-HTML module (ansi_up)', tags: ['Viewer'], response: { 200: content('ES module', 'text/javascript') } },
      handler: async (_req, reply) =>
        reply.header('X-Content-Type-Options', 'nosniff').header('Cache-Control', 'public, max-age=3600').type('text/javascript; charset=utf-8').send(ansiUp),
    },
  });

  const pageFile = join(webDir, 'index.html');
  resource(app, '/logs/:id', {
    GET: {
      schema: {
        summary: 'The log viewer page of a build or run',
        description: 'Any id gets the page; the page reads the job and its log through the API.',
        tags: ['Viewer'],
        // Not validated: the page shows "not found" from the API's answer.
        params: { type: 'object', properties: { id: { type: 'string', description: 'a build or run id' } }, required: ['id'] },
        response: { 200: content('HTML page', 'text/html') },
      },
      handler: async (_req, reply) => pageHeaders(reply).type('text/html; charset=utf-8').send(await readFile(pageFile)),
    },
  });
  // The dashboard: the token user's builds and runs, and search across their logs (web/dashboard.js).
  const dashboardFile = join(webDir, 'dashboard.html');
  resource(app, '/', {
    GET: {
      schema: {
        summary: 'The dashboard: builds and runs, and search across their logs',
        description: 'The page reads the token user\'s jobs through the API.',
        tags: ['Viewer'],
        response: { 200: content('HTML page', 'text/html') },
      },
      handler: async (_req, reply) => pageHeaders(reply).type('text/html; charset=utf-8').send(await readFile(dashboardFile)),
    },
  });
}
