// @ts-check
/**
 * The job object of the log the viewer shows: found as a build or a run, then watched with
 * `?waitForFinish=60`, which the server holds until the job ends (or 60 s pass), so that the end shows
 * at once without polling.
 */
import { TERMINAL } from './api.js';
import { Stop } from './requests.js';

export class JobWatch {
  /**
   * @param {import('./requests.js').Requests} requests
   * @param {string} jobId
   * @param {{ changed: () => void, retrying: (why: string) => void }} on a new job object; a failed
   *   look-up being retried
   */
  constructor(requests, jobId, on) {
    this.requests = requests;
    this.jobId = jobId;
    this.on = on;
    /** @type {any} */
    this.job = null;
    /** @type {'build' | 'run' | null} */
    this.kind = null;
    /** When the job object arrived (performance.now()), to count a running job's duration on. */
    this.receivedAt = 0;
  }

  get terminal() {
    return this.job !== null && TERMINAL.has(this.job.status);
  }

  get failed() {
    return this.terminal && this.job.status !== 'SUCCEEDED';
  }

  get path() {
    return `/${this.kind === 'run' ? 'actor-runs' : 'actor-builds'}/${encodeURIComponent(this.jobId)}`;
  }

  /** Finds the job as a build or a run, retrying until the server answers; false when it has neither. */
  async find() {
    let delay = 500;
    for (;;) {
      try {
        const id = encodeURIComponent(this.jobId);
        const [build, run] = await Promise.all([this.requests.api(`/actor-builds/${id}`), this.requests.api(`/actor-runs/${id}`)]);
        for (const [res, kind] of /** @type {[Response, 'build' | 'run'][]} */ ([[build, 'build'], [run, 'run']])) {
          if (res.ok) {
            this.kind = kind;
            this.set((await res.json()).data);
            performance.mark('buildlog:job');
            return true;
          }
        }
        if (build.status === 404 && run.status === 404) return false;
        this.on.retrying(`Server answered ${build.status}; retrying…`);
      } catch (err) {
        if (err instanceof Stop) throw err;
        this.on.retrying('Cannot reach the server; retrying…');
      }
      await this.requests.sleep(delay);
      delay = Math.min(delay * 2, 10_000);
    }
  }

  /** Holds a request until the job ends (the server answers at the end or after 60 s), then updates. */
  async watch() {
    let delay = 500;
    while (this.job && !this.terminal) {
      try {
        const res = await this.requests.api(`${this.path}?waitForFinish=60`);
        if (!res.ok) throw new Error(`status ${res.status}`);
        this.set((await res.json()).data);
        delay = 500;
      } catch (err) {
        if (err instanceof Stop) throw err;
        await this.requests.sleep(delay);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  }

  /** Once, now: after a log response ended, to know whether the job ended too. */
  async refresh() {
    const res = await this.requests.api(this.path);
    if (res.ok) this.set((await res.json()).data);
  }

  /** @param {any} data */
  set(data) {
    if (this.terminal && !TERMINAL.has(data.status)) return; // an older answer that arrived late
    this.job = data;
    this.receivedAt = performance.now();
    this.on.changed();
  }

  /** The job's duration so far, counting on while it runs; null if unknown. */
  durationMs() {
    const base = this.job?.stats?.durationMillis;
    if (typeof base !== 'number') return null;
    return this.terminal ? base : base + (performance.now() - this.receivedAt);
  }
}
