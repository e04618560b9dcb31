import type { FastifyRequest } from 'fastify';

/** `?token=...` in a URL, with its value replaced: tokens never reach the server log. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]token=)[^&#]*/gi, '$1[REDACTED]');
}

/**
 * pino options for the request log. The request serializer logs method, redacted URL and address only;
 * headers (so `Authorization`) are never logged.
 */
export function loggerOptions(level: string) {
  return {
    level,
    serializers: {
      req: (req: FastifyRequest) => ({ method: req.method, url: redactUrl(req.url), remoteAddress: req.ip }),
    },
  };
}
