import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import type { RawResponse } from './http.js';

/** Asserts the exact Apify error envelope and returns its message. */
export function assertEnvelope(res: RawResponse, status: number, type: string, message?: string | RegExp): string {
  assert.equal(res.status, status, `status (body: ${res.body.toString().slice(0, 300)})`);
  assert.match(String(res.headers['content-type']), /^application\/json(;|$)/);
  const body = JSON.parse(res.body.toString('utf8')) as { error: { type: string; message: string } };
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['message', 'type']);
  assert.equal(body.error.type, type);
  assert.equal(typeof body.error.message, 'string');
  assert.ok(body.error.message.length > 0);
  assert.doesNotMatch(body.error.message, /\n\s+at /, 'no stack trace');
  if (typeof message === 'string') assert.equal(body.error.message, message);
  else if (message) assert.match(body.error.message, message);
  return body.error.message;
}

/** The same for a fetch Response. */
export async function assertFetchEnvelope(res: Response, status: number, type: string, message?: string | RegExp): Promise<string> {
  const headers: IncomingHttpHeaders = {};
  res.headers.forEach((v, k) => (headers[k] = v));
  return assertEnvelope({ status: res.status, headers, body: Buffer.from(await res.arrayBuffer()) }, status, type, message);
}
