import { request, type Agent, type IncomingHttpHeaders } from 'node:http';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface RawOptions {
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** Default: node's global agent; `false` for a fresh connection. */
  agent?: Agent | false;
}

/**
 * One request over node:http, for what fetch will not send (odd methods, HEAD bodies, raw encodings,
 * malformed values). `path` goes out exactly as given (a URL string would lose everything after a `#`).
 */
export function rawRequest(server: { url: string } | string, method: string, path: string, options: RawOptions = {}): Promise<RawResponse> {
  const { hostname, port } = new URL(typeof server === 'string' ? server : server.url);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, path, method, headers: options.headers, agent: options.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Rejects instead of hanging when `promise` does not settle within `ms`. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
