import { JOB_STATUSES, type JobKind, type JobStatus } from '../core/job.js';
import { ID_PATTERN } from '../core/ids.js';

/**
 * Route schemas shared by several routes: request bodies (validated; `x-expects` is the phrase of the 400
 * that names a field, see validation.ts) and responses. Responses are documentation only: they are not used
 * to serialize (openapi.ts), so what goes on the wire is exactly what the handlers return.
 */

/** An actor's name (also its id here: actors are derived from their jobs' actId). */
export const ACTOR_NAME_PATTERN = '[A-Za-z0-9][A-Za-z0-9._-]{0,99}';

export const PRODUCER_STATUSES: JobStatus[] = ['RUNNING', 'ABORTING', 'TIMING-OUT', 'SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED'];

const optionalObject = (description: string) => ({ type: ['object', 'null'], description, 'x-expects': 'a JSON object' });
const optionalString = (pattern: string, expects: string, description: string) => ({
  type: ['string', 'null'],
  pattern,
  description,
  'x-expects': expects,
});

/** POST /v2/actor-builds, /v2/actor-runs: every field optional, and so is the body. */
export function createJobBody(kind: JobKind) {
  return {
    type: ['object', 'null'],
    'x-expects': 'a JSON object',
    properties: {
      // In the order the fields were checked before there were schemas: the first bad one is named.
      status: {
        enum: ['READY', 'RUNNING'],
        'x-name': 'Field "status" of a new job',
        'x-expects': 'READY or RUNNING',
        description: 'the initial status (default RUNNING)',
      },
      actId: optionalString(
        `^(${ACTOR_NAME_PATTERN}~)?${ACTOR_NAME_PATTERN}$`,
        'an actor name of letters, digits, ".", "_" or "-", optionally as "username~name"',
        'the actor the job belongs to (default "default"); `username~name` with the token\'s own username',
      ),
      buildNumber: optionalString('^[\\w.-]{1,32}$', 'a version such as "0.1.1"', 'the version built or run'),
      ...(kind === 'run' ? { buildId: optionalString(ID_PATTERN, 'a build id', 'the build this run runs') } : {}),
      origin: optionalString('^[A-Z_]{1,32}$', 'an origin such as API, CLI or CI', 'meta.origin of the job object'),
      meta: optionalObject('more meta fields (at most 16 KiB as JSON)'),
      options: optionalObject('the job\'s options object (at most 16 KiB as JSON)'),
    },
  };
}

/** PUT /v2/actor-builds/:id, /v2/actor-runs/:id: the producer sets the status. */
export const SET_STATUS_BODY = {
  type: 'object',
  'x-expects': 'a JSON object',
  required: ['status'],
  properties: {
    status: { enum: PRODUCER_STATUSES, 'x-expects': `one of ${PRODUCER_STATUSES.join(', ')}`, description: 'terminal statuses are final' },
    statusMessage: { type: ['string', 'null'], maxLength: 2000, 'x-expects': 'a string of at most 2000 characters' },
    exitCode: { type: ['integer', 'null'], 'x-expects': 'an integer' },
    logLength: {
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      'x-expects': 'a non-negative integer: the bytes appended in all',
      description: 'with a terminal status and logCrc32: the log must hold exactly these bytes (else 409 log-mismatch)',
    },
    logCrc32: {
      type: 'integer',
      minimum: 0,
      maximum: 0xffffffff,
      'x-expects': 'an unsigned 32-bit integer: the CRC-32 of every byte appended',
      description: 'the CRC-32 of every byte appended (checked with logLength)',
    },
  },
};

const nullable = (type: string, extra: object = {}) => ({ type: [type, 'null'], ...extra });
const date = { type: 'string', format: 'date-time' };

/** The job object (Apify's build or run object; fields without data are null, never missing). */
export const JOB = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    actId: { type: 'string' },
    userId: { type: 'string' },
    startedAt: date,
    finishedAt: nullable('string', { format: 'date-time' }),
    status: { enum: [...JOB_STATUSES] },
    statusMessage: nullable('string'),
    meta: { type: 'object', properties: { origin: nullable('string') } },
    buildNumber: nullable('string'),
    exitCode: nullable('integer'),
    stats: { type: 'object', properties: { durationMillis: { type: 'number' }, runTimeSecs: { type: 'number' } } },
    logTruncatedBytes: { type: ['integer', 'null'], description: 'bytes retention dropped from the head of the log (ours; null in lists)' },
    options: { type: 'object' },
    buildId: { ...nullable('string'), description: 'runs only' },
  },
  required: ['id', 'actId', 'userId', 'startedAt', 'finishedAt', 'status'],
};

export const data = (schema: object, description: string) => ({
  description,
  type: 'object',
  properties: { data: schema },
  required: ['data'],
});

const ERROR_BODY = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { type: { type: 'string' }, message: { type: 'string' } },
      required: ['type', 'message'],
    },
  },
  required: ['error'],
};

const ERRORS: Record<number, string> = {
  400: '`invalid-input`: a bad parameter, header or body',
  401: '`token-not-valid`: the token is unknown, or missing where one is needed',
  403: '`permission-denied`: another user\'s job, or a quota',
  404: '`record-not-found`: no such job',
  409: '`log-mismatch`: the log differs from the producer\'s logLength or logCrc32 (X-Log-Length: the length stored); the status is unchanged',
  413: '`request-too-large`: the body is over the limit (after inflating)',
  415: '`unsupported-media-type` or `unsupported-content-encoding`',
  416: '`range-not-satisfiable`: the range starts after the end of a finished log',
  429: '`rate-limit-exceeded` (with `Retry-After`)',
  503: '`service-unavailable`: the store cannot write, the server is shutting down, or (`/readyz`) a backend is not ready (with `Retry-After`)',
  507: '`insufficient-storage`: the store is over `--max-disk-usage` (with `Retry-After`); appends resume once expiry or deletion frees room',
};

/** The Apify error envelope for the given statuses. */
export const errors = (...codes: number[]) =>
  Object.fromEntries(codes.map((code) => [code, { ...ERROR_BODY, description: ERRORS[code] }]));

/** A response whose body is not JSON. */
export const content = (description: string, type: string, schema: object = { type: 'string' }) => ({
  description,
  content: { [type]: { schema } },
});
