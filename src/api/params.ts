import { invalidInput } from '../core/errors.js';
import { isValidId } from '../core/ids.js';
import { isJobStatus, JOB_STATUSES, type JobStatus } from '../core/job.js';

type Query = Record<string, string | string[] | undefined>;

/** Apify's strict boolean: true/1/false/0, case-insensitive, trimmed; absent is false. */
export function booleanParam(query: Query, name: string): boolean {
  const value = query[name];
  if (value === undefined) return false;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (v === 'true' || v === '1') return true;
    if (v === 'false' || v === '0' || v === '') return false;
  }
  throw invalidInput(`Parameter "${name}" must be a boolean (true, false, 1 or 0).`);
}

/** Seconds as a non-negative number (fractions allowed, as the OpenAPI type is double); absent is 0. */
export function secondsParam(query: Query, name: string): number {
  const value = query[name];
  if (value === undefined || value === '') return 0;
  if (typeof value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(value)) return Number(value);
  throw invalidInput(`Parameter "${name}" must be a non-negative number of seconds.`);
}

/** A job id from the path; a malformed one cannot exist, so it is the same 404 as an unknown one. */
export function jobIdParam(params: unknown, notFound: () => Error): string {
  const id = (params as { id?: string }).id ?? '';
  if (!isValidId(id)) throw notFound();
  return id;
}

/** A non-negative integer parameter; absent (or empty) is `fallback`. */
export function integerParam(query: Query, name: string, fallback: number): number {
  const value = query[name];
  if (value === undefined || value === '') return fallback;
  if (typeof value === 'string' && /^\s*\d{1,15}\s*$/.test(value)) return Number(value);
  throw invalidInput(`Parameter "${name}" must be a non-negative integer.`);
}

/** Apify's cap on one page of a list, which is also the default page size. */
export const MAX_LIST_LIMIT = 1000;

/** `status`: one status or a comma-separated list (what the JS client makes of an array); absent = any. */
export function statusesParam(query: Query, name = 'status'): JobStatus[] | undefined {
  const value = query[name];
  if (value === undefined || value === '') return undefined;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim().toUpperCase()) : [];
  if (list.length === 0 || !list.every(isJobStatus)) {
    throw invalidInput(`Parameter "${name}" must be one or more of ${JOB_STATUSES.join(', ')} (comma-separated).`);
  }
  return [...new Set(list)];
}

export interface ListParams {
  offset: number;
  limit: number;
  desc: boolean;
  statuses: JobStatus[] | undefined;
}

/** offset, limit (0 or absent = 1000; more is capped at 1000, as Apify does), desc and status of a list. */
export function listParams(query: Query): ListParams {
  const offset = integerParam(query, 'offset', 0);
  const limit = Math.min(integerParam(query, 'limit', 0) || MAX_LIST_LIMIT, MAX_LIST_LIMIT);
  return { offset, limit, desc: booleanParam(query, 'desc'), statuses: statusesParam(query) };
}
