import { isTerminal, type JobStatus } from '../core/job.js';
import type { ClientConfig } from './config.js';
import { postBytes } from './post-bytes.js';

export type JobKind = 'build' | 'run';

/** The fields of a job object the commands read (the server sends more). */
export interface WireJob {
  id: string;
  status: JobStatus;
  statusMessage: string | null;
  exitCode: number | null;
}

const BASE: Record<JobKind, string> = { build: '/v2/actor-builds', run: '/v2/actor-runs' };

/** The server answered with an error envelope `{"error":{"type","message"}}` (or some other non-2xx). */
export class ErrorResponse extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly headers: Headers,
  ) {
    super(message);
    this.name = 'ErrorResponse';
  }
}

/** The request did not get an answer: refused, reset, DNS, TLS, timeout, or the connection broke. */
export class NetworkError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url} (${describeCause(cause)})`, { cause });
    this.name = 'NetworkError';
  }
}

/** Worth trying again later: no answer, rate limited, or the server is failing/restarting. */
export function isRetryable(err: unknown): boolean {
  if (err instanceof NetworkError) return true;
  return err instanceof ErrorResponse && (err.status === 429 || err.status >= 500);
}

/** fetch failures nest the useful part (`ECONNREFUSED`, `other side closed`) in `cause`. */
function describeCause(err: unknown): string {
  let e = err as { cause?: unknown; code?: string; message?: string; name?: string } | undefined;
  for (let i = 0; i < 5 && e && typeof e === 'object' && e.cause && typeof e.cause === 'object'; i++) {
    e = e.cause as typeof e;
  }
  if (!e || typeof e !== 'object') return String(err);
  if (e.name === 'TimeoutError') return 'timed out';
  return e.code && e.message && !e.message.includes(e.code) ? `${e.code}: ${e.message}` : (e.message ?? e.code ?? String(err));
}

export async function toErrorResponse(res: Response): Promise<ErrorResponse> {
  return errorFromAnswer(res.status, res.headers, await res.text().catch(() => ''));
}

function errorFromAnswer(status: number, headers: Headers, body: string): ErrorResponse {
  let type = 'http-error';
  let message = `HTTP ${status}`;
  try {
    const parsed = JSON.parse(body) as { error?: { type?: unknown; message?: unknown } };
    if (typeof parsed?.error?.type === 'string') type = parsed.error.type;
    if (typeof parsed?.error?.message === 'string') message = parsed.error.message;
  } catch {
    // Not our envelope (a proxy's HTML page, an empty body): the status says enough.
  }
  return new ErrorResponse(status, type, message, headers);
}

interface RequestInit {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  json?: unknown;
  signal?: AbortSignal;
  /** Gives up on a request that gets no answer (not for held or streamed responses). */
  timeoutMs?: number;
}

/** Typed calls to a buildlog server over HTTP: Node's fetch, and node:http for the byte-heavy appends. */
export class BuildlogApi {
  constructor(readonly config: ClientConfig) {}

  get url(): string {
    return this.config.url;
  }

  /** Sends a request; throws NetworkError when there is no answer, returns any answer as it is. */
  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    let body = init.body;
    if (init.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(init.json);
    }
    const signals = [init.signal, init.timeoutMs ? AbortSignal.timeout(init.timeoutMs) : undefined].filter(
      (s): s is AbortSignal => s !== undefined,
    );
    const url = `${this.config.url}${path}`;
    try {
      return await fetch(url, {
        method: init.method ?? 'GET',
        headers,
        body,
        signal: signals.length > 1 ? AbortSignal.any(signals) : signals[0],
      });
    } catch (err) {
      // The caller's own cancellation is not a network problem.
      if (init.signal?.aborted) throw err;
      throw new NetworkError(this.config.url, err);
    }
  }

  /** A JSON call: the `data` of a 2xx answer, else ErrorResponse. */
  async call<T>(path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.request(path, init);
    if (!res.ok) throw await toErrorResponse(res);
    return ((await res.json()) as { data: T }).data;
  }

  createJob(kind: JobKind, body: Record<string, unknown>): Promise<WireJob> {
    return this.call(BASE[kind], { method: 'POST', json: body, timeoutMs: 30_000 });
  }

  /** The job object; with `waitForFinish` the server holds the answer until it is terminal (at most 60 s). */
  getJob(kind: JobKind, id: string, opts: { waitForFinish?: number; signal?: AbortSignal } = {}): Promise<WireJob> {
    const query = opts.waitForFinish ? `?waitForFinish=${opts.waitForFinish}` : '';
    return this.call(`${BASE[kind]}/${encodeURIComponent(id)}${query}`, {
      signal: opts.signal,
      timeoutMs: ((opts.waitForFinish ?? 0) + 30) * 1000,
    });
  }

  /** A job whose kind is unknown (builds and runs share one id space). */
  async findJob(id: string): Promise<WireJob & { kind: JobKind }> {
    try {
      return { ...(await this.getJob('build', id)), kind: 'build' };
    } catch (err) {
      if (!(err instanceof ErrorResponse && err.status === 404)) throw err;
      return { ...(await this.getJob('run', id)), kind: 'run' };
    }
  }

  setStatus(
    kind: JobKind,
    id: string,
    body: { status: JobStatus; statusMessage?: string; exitCode?: number | null; logLength?: number; logCrc32?: number },
  ): Promise<WireJob> {
    return this.call(`${BASE[kind]}/${encodeURIComponent(id)}`, { method: 'PUT', json: body, timeoutMs: 30_000 });
  }

  /** Appends `data` (one buffer, or parts sent one after the other) at absolute offset `offset`; resolves with the log length after it. */
  async append(id: string, data: Buffer | Buffer[], offset: number, signal?: AbortSignal): Promise<{ length: number; duplicate: boolean }> {
    const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'x-log-offset': String(offset) };
    if (this.config.token) headers.authorization = `Bearer ${this.config.token}`;
    const timeout = AbortSignal.timeout(60_000);
    const url = `${this.config.url}/v2/logs/${encodeURIComponent(id)}/chunks`;
    let answer;
    try {
      // node:http rather than fetch here: it sends the Buffer as it is (fetch copies every body).
      answer = await postBytes(url, headers, data, signal ? AbortSignal.any([signal, timeout]) : timeout);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new NetworkError(this.config.url, err);
    }
    if (answer.status >= 200 && answer.status < 300) {
      return (JSON.parse(answer.body.toString()) as { data: { length: number; duplicate: boolean } }).data;
    }
    const answerHeaders = new Headers();
    for (const [k, v] of Object.entries(answer.headers)) if (typeof v === 'string') answerHeaders.set(k, v);
    throw errorFromAnswer(answer.status, answerHeaders, answer.body.toString());
  }

  /**
   * Opens the raw log from absolute offset `from` (`Range: bytes=from-`); with `stream` the body goes on
   * until the job is terminal. The answer is returned whatever its status (206, 200, 416, errors).
   */
  openLog(id: string, opts: { from: number; stream: boolean; signal?: AbortSignal }): Promise<Response> {
    const query = opts.stream ? '?raw=1&stream=1' : '?raw=1';
    return this.request(`/v2/logs/${encodeURIComponent(id)}${query}`, {
      headers: { range: `bytes=${opts.from}-` },
      signal: opts.signal,
    });
  }
}

export { isTerminal };
