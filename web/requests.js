// @ts-check
/**
 * The API requests of one load of the viewer page. Stopping the load (a token was entered: the page
 * loads again) aborts all of them at once, and whatever the load still calls throws Stop.
 */
import { apiFetch, errorMessage } from './api.js';

export class Stop extends Error {}

export class Requests {
  /**
   * @param {string} apiBase where /v2 is
   * @param {{ requests: number }} metrics counts the requests made
   * @param {(status: number, message: string) => void} denied called on 401 or 403 (the load then stops)
   */
  constructor(apiBase, metrics, denied) {
    this.apiBase = apiBase;
    this.metrics = metrics;
    this.denied = denied;
    this.stopped = false;
    /** @type {Set<AbortController>} */
    this.open = new Set();
  }

  stop() {
    this.stopped = true;
    for (const c of this.open) c.abort();
    this.open.clear();
  }

  /** For a response whose body is read as it streams: `release` it when done. */
  controller() {
    const c = new AbortController();
    this.open.add(c);
    return c;
  }

  /** @param {AbortController} c */
  release(c) {
    this.open.delete(c);
  }

  /** Waits `ms`; throws Stop if the load stopped meanwhile. @param {number} ms */
  sleep(ms) {
    return new Promise((resolve, reject) => {
      setTimeout(() => (this.stopped ? reject(new Stop()) : resolve(undefined)), ms);
    });
  }

  /**
   * A request to the API. 401/403 ask for a token and stop the load.
   * @param {string} path under /v2
   * @param {{ headers?: Record<string, string>, method?: string, stream?: AbortController }} [options]
   *   stream: a controller from `controller()`, for a response read as it streams (the caller releases it)
   */
  async api(path, { headers = {}, method = 'GET', stream } = {}) {
    if (this.stopped) throw new Stop();
    const ctl = stream ?? this.controller();
    this.metrics.requests++;
    let res;
    try {
      res = await apiFetch(`${this.apiBase}${path}`, { method, headers, signal: ctl.signal });
    } catch (err) {
      this.release(ctl);
      if (this.stopped) throw new Stop();
      throw err;
    }
    if (!stream) this.release(ctl);
    if (this.stopped) throw new Stop();
    if (res.status === 401 || res.status === 403) {
      this.denied(res.status, await errorMessage(res));
      throw new Stop();
    }
    return res;
  }
}
