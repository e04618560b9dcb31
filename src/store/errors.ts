/** The data directory cannot be used (corrupted, foreign, or of another schema): refused at start. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreOpenError';
  }
}

/** The store cannot write right now (disk full, read-only, I/O error): the request may be retried later. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}
