/** The data directory cannot be used (corrupted, foreign, or of another schema): refused at start. */
export class StoreOpenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreOpenError';
  }
}
