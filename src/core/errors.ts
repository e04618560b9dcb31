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
/** A verified finish whose length or CRC differs from what was received; X-Log-Length says how much that is. */
export const logMismatch = (message: string, length: number) =>
  new ApiError(409, 'log-mismatch', message, { 'X-Log-Length': String(length) });
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
