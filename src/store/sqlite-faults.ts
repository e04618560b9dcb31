import { StoreUnavailableError } from './errors.js';

/** SQLite result codes that mean the disk, not the request, is at fault: the store is unavailable for now. */
const UNAVAILABLE = /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY|LOCKED|NOMEM|PROTOCOL)/;

export function storeFault(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE.test(code)) {
    const reason = code.startsWith('SQLITE_FULL') ? 'the disk is full' : `the database cannot be written (${code})`;
    return new StoreUnavailableError(`The log store is unavailable: ${reason}.`, { cause: err });
  }
  return err;
}

/** Runs a write, turning disk faults into StoreUnavailableError. */
export function guard<T>(write: () => T): T {
  try {
    return write();
  } catch (err) {
    throw storeFault(err);
  }
}
