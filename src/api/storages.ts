import type { FastifyInstance } from 'fastify';
import { recordNotFound } from '../core/errors.js';
import { resource } from './routes.js';

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
      GET: async () => {
        throw recordNotFound(`${what} was not found`);
      },
    });
  }
}
