import type { Refusal } from '../core/errors.js';
import type { JobKind } from '../core/job.js';

/** An error that becomes the Apify envelope `{"error":{"type","message"}}` with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly type: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** The Apify error body of an ApiError. */
export const envelope = (err: ApiError) => ({ error: { type: err.type, message: err.message } });

/** What a client sees of a failure that is ours: no details (they go to the server log). */
export const internalError = () => new ApiError(500, 'internal-server-error', 'Internal server error.');

export const invalidInput = (message: string, headers?: Record<string, string>) =>
  new ApiError(400, 'invalid-input', message, headers);
export const tokenNotValid = () => new ApiError(401, 'token-not-valid', 'Authentication token is not valid.');
export const tokenRequired = () =>
  new ApiError(401, 'token-not-valid', 'Authentication token was not provided.');
export const permissionDenied = (message = 'You do not have permission to perform this action.') =>
  new ApiError(403, 'permission-denied', message);
export const recordNotFound = (message = 'The requested resource was not found.') =>
  new ApiError(404, 'record-not-found', message);
export const pageNotFound = () =>
  new ApiError(
    404,
    'page-not-found',
    'We have bad news: there is no API endpoint at this URL. Did you specify it correctly?',
  );
export const methodNotAllowed = (allowed: string[]) => {
  const list = ['OPTIONS', ...allowed.filter((m) => m !== 'OPTIONS')].join(',');
  return new ApiError(
    405,
    'method-not-allowed',
    `This API end-point can only be accessed using the following HTTP methods: ${list}`,
    { Allow: list },
  );
};
export const requestTooLarge = (limit: number) =>
  new ApiError(413, 'request-too-large', `The POST payload is too large (limit: ${limit} bytes).`);
export const unsupportedEncoding = (encoding: string) =>
  new ApiError(
    415,
    'unsupported-content-encoding',
    // Only characters a coding name can have are echoed (no markup, quotes or control characters).
    `Content-Encoding "${encoding.replace(/[^\w ,;=.+-]/g, '?').slice(0, 40)}" is not supported.`,
  );
export const rateLimitExceeded = (
  retryAfterSecs: number,
  message = 'You have exceeded the rate limit. Please try again later.',
) =>
  new ApiError(429, 'rate-limit-exceeded', message, {
    'Retry-After': String(retryAfterSecs),
  });
export const serviceUnavailable = (message: string, retryAfterSecs = 5) =>
  new ApiError(503, 'service-unavailable', message, { 'Retry-After': String(retryAfterSecs) });
export const insufficientStorage = (message: string) =>
  new ApiError(507, 'insufficient-storage', message, { 'Retry-After': '60' });

/** Apify's 404 text for each kind of job path. */
export const NOT_FOUND_TEXT: Record<JobKind | 'any', string> = {
  build: 'Actor build was not found',
  run: 'Actor run was not found',
  any: 'The requested resource was not found.',
};
export const jobNotFound = (kind: JobKind | 'any') => recordNotFound(NOT_FOUND_TEXT[kind]);

/** What a client sees of the job service's refusal. */
export function refusalToApi(r: Refusal): ApiError {
  switch (r.reason) {
    case 'job-not-found':
      return jobNotFound(r.kind);
    case 'not-owner':
      return permissionDenied();
    case 'job-quota':
      return permissionDenied(`User "${r.username}" has reached the limit of ${r.limit} jobs.`);
    case 'byte-quota':
      return permissionDenied(`The owner of this job has reached the limit of ${r.limit} log bytes.`);
    // A verified finish that does not match: X-Log-Length says how much was received, so the producer can send the rest.
    case 'length-mismatch':
      return logMismatch(`The log has ${r.length} bytes, not the ${r.sent} the producer sent; the status was not changed.`, r.length);
    case 'crc-mismatch':
      return logMismatch(
        `The log's CRC-32 is ${r.crc32}, not the ${r.sent} the producer sent: its bytes differ; the status was not changed.`,
        r.length,
      );
    case 'offset-mismatch':
      return invalidInput(`X-Log-Offset ${r.offset} does not match the log length ${r.length}.`, {
        'X-Log-Length': String(r.length),
      });
    case 'job-finished':
      return invalidInput(`The job is already finished (status ${r.status}); its log cannot be appended to.`);
    case 'bad-transition':
      return invalidInput(`Cannot change status from ${r.from} to ${r.to}.`);
  }
}

const logMismatch = (message: string, length: number) =>
  new ApiError(409, 'log-mismatch', message, { 'X-Log-Length': String(length) });
