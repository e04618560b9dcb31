// The in-memory counter store of @fastify/rate-limit (it ships no types for this file).
declare module '@fastify/rate-limit/store/LocalStore.js' {
  interface Window {
    current: number;
    ttl: number;
  }
  export default class LocalStore {
    constructor(continueExceeding: boolean, exponentialBackoff: boolean, cache?: number);
    /** Counts one request of `key` and calls back at once with the window's count and time left. */
    incr(key: string, cb: (err: Error | null, window: Window) => void, timeWindow: number, max: number): void;
  }
}
