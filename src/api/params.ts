import { invalidInput } from '../core/errors.js';
import { isValidId } from '../core/ids.js';

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
