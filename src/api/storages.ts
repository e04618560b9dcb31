import type { FastifyInstance } from 'fastify';
import { recordNotFound } from './api-error.js';
import { resource } from './routes.js';
import { errors } from './schemas.js';

/**
 * buildlog keeps no datasets, key-value stores or request queues, but a run names default ones (its own
 * id) because `apify runs info` and `apify runs ls` look them up and fail on a null id. Apify's 404
 * `record-not-found` makes the clients read "none" (`undefined`) instead of failing.
 */
export function storageRoutes(app: FastifyInstance): void {
  for (const [path, what] of [
    ['/v2/datasets/:id', 'Dataset'],
    ['/v2/key-value-stores/:id', 'Key-value store'],
    ['/v2/request-queues/:id', 'Request queue'],
  ] as const) {
    resource(app, path, {
      GET: {
        schema: {
          summary: `Get a ${what.toLowerCase()} (always 404: buildlog keeps none)`,
          description: 'A run names default storages (its own id) so that `apify runs info` and `apify runs ls` find "none" here.',
          tags: ['Apify'],
          params: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
          response: errors(404),
        },
        handler: async () => {
          throw recordNotFound(`${what} was not found`);
        },
      },
    });
  }
}
