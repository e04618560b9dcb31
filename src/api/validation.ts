import type { FastifyError, FastifyRequest } from 'fastify';
import { invalidInput, jobNotFound, type ApiError } from './api-error.js';

interface PartSchema {
  properties?: Record<string, { 'x-expects'?: string; 'x-name'?: string }>;
  'x-expects'?: string;
}

const LABELS: Record<string, string> = { querystring: 'Parameter', headers: 'Header', body: 'Field' };

/** `x-log-offset` → `X-Log-Offset`, as the API's documentation and messages spell headers. */
const headerName = (name: string) => name.replace(/(^|-)([a-z])/g, (_m, sep: string, c: string) => sep + c.toUpperCase());

/**
 * A request the route's schema refused, as the Apify envelope: 400 `invalid-input` naming the parameter,
 * header or field (or as its schema's `x-name` says) with what it must be (the schema's `x-expects`); a
 * malformed path id is the route's 404,
 * as an unknown id is.
 */
export function validationError(err: FastifyError, req: FastifyRequest): ApiError {
  const part = err.validationContext ?? 'body';
  const { jobKind } = req.routeOptions.config;
  if (part === 'params' && jobKind) return jobNotFound(jobKind);
  const schema = (req.routeOptions.schema as Record<string, PartSchema | undefined> | undefined)?.[part];
  const issue = err.validation?.[0];
  const name =
    issue?.keyword === 'required'
      ? String((issue.params as { missingProperty: string }).missingProperty)
      : issue?.instancePath.split('/')[1];
  if (name === undefined || name === '') {
    return invalidInput(`The request ${part === 'body' ? 'body' : part} must be ${schema?.['x-expects'] ?? 'valid'}.`);
  }
  const property = schema?.properties?.[name];
  const label = property?.['x-name'] ?? `${LABELS[part] ?? 'Parameter'} "${part === 'headers' ? headerName(name) : name}"`;
  const expects = property?.['x-expects'];
  return invalidInput(expects ? `${label} must be ${expects}.` : `${label} is not valid.`);
}
