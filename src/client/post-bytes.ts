import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

export interface RawAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/**
 * POSTs a byte body with node:http rather than fetch: the body is written from the caller's buffers as
 * they are (fetch copies it into a new one first), which matters for the appender's megabytes per second.
 * Rejects with the socket's error (no answer); any answer resolves.
 */
export function postBytes(url: string, headers: Record<string, string>, body: Buffer | Buffer[], signal: AbortSignal): Promise<RawAnswer> {
  const target = new URL(url);
  const parts = Array.isArray(body) ? body : [body];
  const length = parts.reduce((n, p) => n + p.length, 0);
  const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        headers: { ...headers, 'content-length': String(length) },
        agent: target.protocol === 'https:' ? agents.https : agents.http,
        signal,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => parts.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    // Corked, so that the parts leave in few large writes (writev), not one syscall each.
    req.cork();
    for (const part of parts) req.write(part);
    req.end();
  });
}
