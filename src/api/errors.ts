import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ApiError, invalidInput, pageNotFound, requestTooLarge, serviceUnavailable } from '../core/errors.js';
import { StoreUnavailableError } from '../store/errors.js';

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply
    .code(err.statusCode)
    .headers(err.headers)
    .type('application/json; charset=utf-8')
    .send({ error: { type: err.type, message: err.message } });
}

/** Turns Fastify's own errors (bad JSON, too large, ...) into the Apify types; anything unexpected is a 500 without details. */
function toApiError(err: FastifyError, maxBodyBytes: number): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof StoreUnavailableError) {
    return serviceUnavailable(err.message);
  }
  // zlib's errors while inflating a request body: the client sent bytes that are not what it declared.
  if (typeof err.code === 'string' && /^(Z_|ERR_BROTLI|ERR_ZLIB)/.test(err.code)) {
    return invalidInput('The request body could not be decompressed with its Content-Encoding.');
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return requestTooLarge(maxBodyBytes);
  if (status === 404) return pageNotFound();
  if (status >= 400 && status < 500) {
    if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError) {
      return invalidInput('The request body is not valid JSON.');
    }
    return new ApiError(status, 'invalid-input', `Invalid input: ${err.message}`);
  }
  return new ApiError(500, 'internal-server-error', 'Internal server error.');
}

export function registerErrorHandling(app: FastifyInstance, maxBodyBytes: number): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const apiError = toApiError(err, maxBodyBytes);
    if (apiError.statusCode >= 500) req.log.error({ err }, 'request failed');
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, pageNotFound()));
}
