import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  ApiError,
  envelope,
  internalError,
  invalidInput,
  pageNotFound,
  recordNotFound,
  refusalToApi,
  requestTooLarge,
  serviceUnavailable,
} from './api-error.js';
import { DomainError } from '../core/errors.js';
import { StoreUnavailableError } from '../store/errors.js';
import { validationError } from './validation.js';

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply
    .code(err.statusCode)
    .headers(err.headers)
    .type('application/json; charset=utf-8')
    .send(envelope(err));
}

/** The Apify error for what the service or the store threw (a refusal, a store that cannot write); null for anything else. */
export function apiErrorOf(err: unknown): ApiError | null {
  if (err instanceof ApiError) return err;
  if (err instanceof DomainError) return refusalToApi(err.refusal);
  if (err instanceof StoreUnavailableError) return serviceUnavailable(err.message);
  return null;
}

/** Turns the service's refusals and Fastify's own errors (bad JSON, too large, ...) into the Apify types; anything unexpected is a 500 without details. */
function toApiError(err: FastifyError, req: FastifyRequest, maxBodyBytes: number): ApiError {
  const known = apiErrorOf(err);
  if (known) return known;
  if (err.validation) return validationError(err, req);
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
  return internalError();
}

/**
 * Closing a connection whose client is still sending makes the kernel reset it, and the client may then
 * lose the answer it has not read yet. So after the answer: stop writing (FIN), let what still arrives be
 * read and discarded until the client closes too, for 2 s at most, then close.
 */
function closeGently(socket: Socket): void {
  socket.end();
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

/** Makes Node close this connection gently once the answer is out (it calls `destroySoon` for `Connection: close`). */
function lingerBeforeClose(socket: Socket): void {
  socket.destroySoon = () => closeGently(socket);
}

export function registerErrorHandling(app: FastifyInstance, maxBodyBytes: number): void {
  app.setErrorHandler((err: FastifyError, req, reply) => {
    const apiError = toApiError(err, req, maxBodyBytes);
    if (apiError.statusCode >= 500) req.log.error({ err }, 'request failed');
    if (reply.sent || reply.raw.headersSent) {
      reply.raw.destroy();
      return;
    }
    // Fastify closes the connection after a body it refused (413, bad encoding...): the client may still be sending it.
    if (String(reply.getHeader('connection')).toLowerCase() === 'close') lingerBeforeClose(req.raw.socket);
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((_req, reply) => sendError(reply, pageNotFound()));
}

/**
 * Fastify's routing errors, raised before any route runs, in the envelope too (its own bodies are not
 * Apify's and quote the URL back).
 */
export function frameworkErrorHandler(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  // A path segment longer than any id cannot name anything: the same 404 as an unknown id.
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return void sendError(reply, recordNotFound());
  if (err.code === 'FST_ERR_BAD_URL') return void sendError(reply, invalidInput('The URL is not valid (a malformed %-escape).'));
  sendError(reply, internalError());
}

/**
 * Whether the request Node could not parse is a HEAD. Its packet is the read in which parsing failed, not
 * the request's start: on a keep-alive connection the last bytes of the previous request's body often come
 * first, right before the method. So the last request line before the failure decides (`<method> <target>
 * HTTP/`, found by plain searches: a pattern would backtrack over a long run of token bytes); without
 * one (a first line that is itself malformed), the packet's start.
 */
function refusedHead(err: { rawPacket?: unknown; bytesParsed?: unknown }): boolean {
  if (!Buffer.isBuffer(err.rawPacket)) return false;
  const end = typeof err.bytesParsed === 'number' ? err.bytesParsed : err.rawPacket.length;
  const text = err.rawPacket.subarray(0, end).toString('latin1');
  const version = text.lastIndexOf(' HTTP/');
  const target = version > 0 ? text.lastIndexOf(' ', version - 1) : -1;
  return target > 0 ? text.slice(0, target).endsWith('HEAD') : text.startsWith('HEAD ');
}

/**
 * Node's answer to a connection whose request cannot be parsed (400), is too large in its headers (431) or
 * whose headers do not arrive in time (408), written to the socket before any request exists; the envelope
 * like every other error. The raw packet (it may hold a token) is never logged.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: Socket): void {
  // Gone, or answered already and closing (what the client still sends fails to parse again).
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) return;
  const error =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new ApiError(408, 'request-timeout', 'The request was not received in time.')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError(431, 'request-too-large', 'The request headers are too large.')
        : invalidInput('The request is not valid HTTP.');
  // As Node does: no answer if a response to an earlier request on this connection has begun.
  const inFlight = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (inFlight?.headersSent) return void socket.destroy();
  const body = JSON.stringify(envelope(error));
  // The answer to a HEAD has no body, also when the request is refused (its method is parsed by then).
  const head = refusedHead(err);
  socket.write(
    `HTTP/1.1 ${error.statusCode} ${STATUS_CODES[error.statusCode]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${head ? '' : body}`,
  );
  closeGently(socket);
}
