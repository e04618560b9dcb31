// @ts-check
/**
 * The log, live: one streaming `GET /v2/logs/:id?stream=1&raw=1` read incrementally. Every request after
 * the first names the absolute offset it wants (`Range: bytes=N-`; the server says where its body starts
 * in `X-Log-Offset`), so a dropped connection resumes exactly where it stopped: next = X-Log-Offset +
 * bytes received. One streaming TextDecoder spans all connections, so a UTF-8 character cut by a drop
 * is decoded whole.
 */
import { Stop } from './requests.js';

export class LogFollow {
  /**
   * @param {import('./requests.js').Requests} requests
   * @param {import('./job-watch.js').JobWatch} jobWatch
   * @param {{ bytes: number, reconnects: number }} metrics
   * @param {{ text: (text: string) => void, skipped: (from: number, to: number, first: boolean) => void, changed: () => void, notFound: () => void }} on
   *   text decoded; bytes the server no longer keeps (at the start of the log when `first`); a change
   *   of the state below; no such log
   */
  constructor(requests, jobWatch, metrics, on) {
    this.requests = requests;
    this.jobWatch = jobWatch;
    this.metrics = metrics;
    this.on = on;
    /** The log was stored up to its end when the job ended, and all of it is in. */
    this.done = false;
    /** What was stored when the page opened is in (the first screen can show). */
    this.backlogDone = false;
    /** The connection dropped; retrying. */
    this.reconnecting = false;
  }

  get path() {
    return `/logs/${encodeURIComponent(this.jobWatch.jobId)}`;
  }

  /**
   * How much of a running job's log is stored now (what the page has to show before it is "loaded"):
   * a HEAD with a Range is answered with its Content-Range, or 416 while the log is empty.
   * @returns {Promise<number | null>} null: stopped, or unknown (the log then counts as loaded once
   *   its first bytes are in)
   */
  async storedLength() {
    try {
      const res = await this.requests.api(`${this.path}?raw=1`, { method: 'HEAD', headers: { Range: 'bytes=0-' } });
      if (res.status === 416) return 0;
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('Content-Range') ?? '');
      return m ? Number(m[2]) + 1 : null;
    } catch {
      return null;
    }
  }

  async run() {
    const { requests, jobWatch } = this;
    let decoder = new TextDecoder('utf-8');
    /** Absolute offset of the next byte we want. */
    let next = 0;
    let first = true;
    let delay = 250;
    // A running job's stored length is asked apart; a finished log is "loaded" when its response ends.
    let backlogEnd = /** @type {number | null} */ (null);
    if (jobWatch.job && !jobWatch.terminal) {
      this.storedLength().then((end) => {
        if (requests.stopped) return;
        backlogEnd = end ?? 0;
        if (!first && next >= backlogEnd) this.#backlogIn();
      });
    }
    for (;;) {
      // A response to a request made once the job had ended holds the whole rest of the log.
      const complete = jobWatch.terminal;
      const ctl = requests.controller();
      let res;
      try {
        // The first request sends no Range, so that it may come compressed (browsers ask for identity
        // encoding with any Range); the server says where its body starts in X-Log-Offset all the same.
        /** @type {Record<string, string>} */
        const headers = first ? {} : { Range: `bytes=${next}-` };
        res = await requests.api(`${this.path}?stream=1&raw=1`, { headers, stream: ctl });
      } catch (err) {
        if (err instanceof Stop) throw err;
        delay = await this.#dropped(delay);
        continue;
      }
      if (res.status === 416) break; // a finished log with nothing at or after `next`
      if (res.status === 404) {
        requests.release(ctl);
        this.on.notFound();
        return;
      }
      if (!res.ok || !res.body) {
        requests.release(ctl);
        delay = await this.#dropped(delay);
        continue;
      }
      const offset = Number(res.headers.get('X-Log-Offset') ?? next);
      let skip = 0;
      if (offset > next) {
        // The bytes in between fell out of the server's retention window.
        this.on.skipped(next, offset, first);
        decoder = new TextDecoder('utf-8');
      } else skip = next - offset;
      next = Math.max(next, offset);
      if (first) {
        first = false;
        performance.mark('buildlog:log-response');
        if (backlogEnd !== null && next >= backlogEnd) this.#backlogIn();
      }
      this.#setReconnecting(false);
      const reader = res.body.getReader();
      let clean = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) {
            clean = true;
            break;
          }
          let bytes = value;
          if (skip > 0) {
            const n = Math.min(skip, bytes.length);
            skip -= n;
            bytes = bytes.subarray(n);
          }
          next += bytes.length;
          this.metrics.bytes += bytes.length;
          const text = decoder.decode(bytes, { stream: true });
          if (text) this.on.text(text);
          if (!this.backlogDone && backlogEnd !== null && next >= backlogEnd) this.#backlogIn();
          delay = 250;
        }
      } catch {
        if (requests.stopped) throw new Stop();
      } finally {
        requests.release(ctl);
      }
      if (clean) {
        if (complete) break;
        // The server ends a follow response when the job ends, or when it shuts down: ask which.
        try {
          await jobWatch.refresh();
        } catch (err) {
          if (err instanceof Stop) throw err;
        }
        if (jobWatch.terminal) continue; // one more request gets any last bytes (or a 416)
      }
      delay = await this.#dropped(delay);
    }
    const rest = decoder.decode();
    if (rest) this.on.text(rest);
    performance.mark('buildlog:log-end');
    this.done = true;
    this.backlogDone = true;
    if (jobWatch.job && !jobWatch.terminal) await jobWatch.refresh().catch(() => undefined);
    this.on.changed();
  }

  /** Waits before the next attempt; returns the delay after that one. @param {number} delay */
  async #dropped(delay) {
    this.metrics.reconnects++;
    this.#setReconnecting(true);
    await this.requests.sleep(delay);
    return Math.min(delay * 2, 5000);
  }

  #backlogIn() {
    if (this.backlogDone) return;
    this.backlogDone = true;
    this.on.changed();
  }

  /** @param {boolean} on */
  #setReconnecting(on) {
    if (this.reconnecting === on) return;
    this.reconnecting = on;
    this.on.changed();
  }
}
