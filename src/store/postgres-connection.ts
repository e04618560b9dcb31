import pg from 'pg';
import { StoreUnavailableError } from './errors.js';

/** BIGINT columns come back as numbers: every one we keep (offsets, lengths, times) is below 2^53. */
export const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

/**
 * Errors that mean the database, not the request, is at fault (connection lost or refused, server
 * shutting down, out of resources): the store is unavailable for now and the request may be retried.
 */
export function storeFault(err: unknown): unknown {
  const code = String((err as { code?: unknown }).code ?? '');
  if (/^(08|53|57P0|58)/.test(code) || /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND)$/.test(code) || /Connection terminated/.test(String((err as Error).message))) {
    return new StoreUnavailableError(`The log store is unavailable: PostgreSQL ${(err as Error).message || code}.`, { cause: err });
  }
  return err;
}
