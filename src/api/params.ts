import { invalidInput, jobNotFound } from './api-error.js';
import type { JobKind } from '../core/job.js';
import { ID_PATTERN, isValidId } from '../core/ids.js';
import { isJobStatus, JOB_STATUSES, type JobStatus } from '../core/job.js';

type Query = Record<string, string | string[] | undefined>;

/**
 * The schemas of query parameters and headers say what a value must be in `x-expects`, the phrase of the
 * 400 that names it (`Parameter "raw" must be a boolean (true, false, 1 or 0).`, see validation.ts).
 * Values stay strings (no type coercion), so the schema decides exactly what the wire accepts.
 */
export interface ValueSchema {
  type: 'string';
  pattern: string;
  description: string;
  'x-expects': string;
}

/** Apify's strict boolean: true/1/false/0, case-insensitive, surrounding blanks ignored; absent or empty is false. */
export const booleanQuery = (description: string): ValueSchema => ({
  type: 'string',
  pattern: '^\\s*([Tt][Rr][Uu][Ee]|[Ff][Aa][Ll][Ss][Ee]|1|0)?\\s*$',
  description,
  'x-expects': 'a boolean (true, false, 1 or 0)',
});

/** Seconds as a non-negative number (fractions allowed, as Apify's OpenAPI type is double); absent or empty is 0. */
export const secondsQuery = (description: string): ValueSchema => ({
  type: 'string',
  pattern: '^(\\s*\\d+(\\.\\d+)?\\s*)?$',
  description,
  'x-expects': 'a non-negative number of seconds',
});

/** A non-negative integer (at most 15 digits); absent or empty is the parameter's default. */
export const integerQuery = (description: string): ValueSchema => ({
  type: 'string',
  pattern: '^(\\s*\\d{1,15}\\s*)?$',
  description,
  'x-expects': 'a non-negative integer',
});

/** Either case of each letter: JSON Schema patterns have no case-insensitive flag. */
const anyCase = (word: string) => word.replace(/[A-Za-z]/g, (c) => `[${c.toUpperCase()}${c.toLowerCase()}]`);
const STATUS = `(${JOB_STATUSES.map(anyCase).join('|')})`;

/** One status or a comma-separated list of them, in any case; absent or empty is any status. */
export const statusesQuery = (description: string): ValueSchema => ({
  type: 'string',
  pattern: `^(\\s*${STATUS}\\s*(,\\s*${STATUS}\\s*)*)?$`,
  description,
  'x-expects': `one or more of ${JOB_STATUSES.join(', ')} (comma-separated)`,
});

/** A querystring schema of the given parameters (unknown ones are ignored, as Apify does). */
export const queryOf = <P extends Record<string, ValueSchema | { description: string }>>(properties: P) => ({ type: 'object', properties });

/** The `:id` of a job path. A malformed id cannot exist: it is the route's 404, as for an unknown id (validation.ts). */
export const JOB_ID_PARAMS = {
  type: 'object',
  properties: { id: { type: 'string', pattern: ID_PATTERN, description: 'a build or run id (17 letters and digits when issued here)' } },
  required: ['id'],
} as const;

function fail(name: string, schema: ValueSchema): never {
  throw invalidInput(`Parameter "${name}" must be ${schema['x-expects']}.`);
}

/** A boolean query parameter (its schema has validated it on the routes that declare it). */
export function booleanParam(query: Query, name: string): boolean {
  const value = query[name];
  if (value === undefined) return false;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0' || v === '') return false;
  }
  return fail(name, booleanQuery(''));
}

/** A section's name (`?section=`): a GitLab section's name or a GitHub group's title. */
export const sectionQuery = (description: string): ValueSchema => ({
  type: 'string',
  pattern: '^[^\\n]{1,200}$',
  description,
  'x-expects': 'the name of one section (1 to 200 characters)',
});

/** The `section` query parameter; absent is undefined. */
export function sectionParam(query: Query): string | undefined {
  const value = query.section;
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^[^\n]{1,200}$/.test(value)) return fail('section', sectionQuery(''));
  return value;
}

/** A seconds query parameter; absent is 0. */
export function secondsParam(query: Query, name: string): number {
  const value = query[name];
  if (value === undefined || value === '') return 0;
  if (typeof value === 'string' && new RegExp(secondsQuery('').pattern).test(value)) return Number(value);
  return fail(name, secondsQuery(''));
}

/** A job id from the path; a malformed one cannot exist, so it is the same 404 as an unknown one. */
export function jobIdParam(params: unknown, kind: JobKind | 'any'): string {
  const id = (params as { id?: string }).id ?? '';
  if (!isValidId(id)) throw jobNotFound(kind);
  return id;
}

/** A non-negative integer parameter; absent (or empty) is `fallback`. */
export function integerParam(query: Query, name: string, fallback: number): number {
  const value = query[name];
  if (value === undefined || value === '') return fallback;
  if (typeof value === 'string' && /^\s*\d{1,15}\s*$/.test(value)) return Number(value);
  return fail(name, integerQuery(''));
}

/** Apify's cap on one page of a list, which is also the default page size. */
export const MAX_LIST_LIMIT = 1000;

/** `status`: one status or a comma-separated list (what the JS client makes of an array); absent = any. */
export function statusesParam(query: Query, name = 'status'): JobStatus[] | undefined {
  const value = query[name];
  if (value === undefined || value === '') return undefined;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim().toUpperCase()) : [];
  if (list.length === 0 || !list.every(isJobStatus)) return fail(name, statusesQuery(''));
  return [...new Set(list)];
}

export interface ListParams {
  offset: number;
  limit: number;
  desc: boolean;
  statuses: JobStatus[] | undefined;
}

/** The query of a list of jobs. */
export const LIST_QUERY = queryOf({
  offset: integerQuery('jobs to skip (default 0)'),
  limit: integerQuery(`the page size (0 or absent = ${MAX_LIST_LIMIT}; more is capped at ${MAX_LIST_LIMIT})`),
  desc: booleanQuery('newest first (default: oldest first, by startedAt)'),
  status: statusesQuery('only jobs in these statuses'),
});

/** offset, limit (0 or absent = 1000; more is capped at 1000, as Apify does), desc and status of a list. */
export function listParams(query: Query): ListParams {
  const offset = integerParam(query, 'offset', 0);
  const limit = Math.min(integerParam(query, 'limit', 0) || MAX_LIST_LIMIT, MAX_LIST_LIMIT);
  return { offset, limit, desc: booleanParam(query, 'desc'), statuses: statusesParam(query) };
}
