import type { FastifyRequest } from 'fastify';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** An operations endpoint (see OPS_ROUTE). */
    ops?: boolean;
  }
}

/**
 * Route config of the operations endpoints (health, readiness, metrics). Load balancers and Prometheus
 * poll them often and carry no user token (the metrics token is not one), so the token lookup and the
 * rate limits let them through.
 */
export const OPS_ROUTE = { ops: true };

export const isOpsRequest = (req: FastifyRequest): boolean => req.routeOptions.config?.ops === true;
