import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig, type Config } from '../../src/server/config.js';
import { startServer, type RunningServer } from '../../src/server/app.js';

export const TOKEN = 'test-token-0123456789abcdefghij';

export interface TestServer extends RunningServer {
  token: string;
  dataDir: string;
  /** Closes the server and removes its data dir. */
  stop(): Promise<void>;
}

export function tempDir(prefix = 'buildlog-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The real server on a free loopback port with a fresh SQLite data dir and a user owning TOKEN. */
export async function startTestServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? tempDir();
  const config = { ...resolveConfig({}, {}), host: '127.0.0.1', port: 0, dataDir, token: TOKEN, ...overrides };
  const server = await startServer(config);
  return {
    ...server,
    token: config.token ?? TOKEN,
    dataDir,
    async stop() {
      await server.close();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A small fetch wrapper for tests: base URL and token applied. */
export function api(server: { url: string }, token?: string) {
  return (path: string, init: RequestInit & { json?: unknown } = {}) => {
    const headers = new Headers(init.headers);
    if (token && !headers.has('authorization')) headers.set('authorization', `Bearer ${token}`);
    let body = init.body;
    if (init.json !== undefined) {
      headers.set('content-type', 'application/json');
      body = JSON.stringify(init.json);
    }
    return fetch(`${server.url}${path}`, { ...init, headers, body });
  };
}

/** Creates a job as the test user and returns its id. */
export async function createJob(server: TestServer, kind: 'build' | 'run' = 'build', body: object = {}): Promise<string> {
  const res = await api(server, server.token)(`/v2/actor-${kind}s`, { method: 'POST', json: body });
  if (res.status !== 201) throw new Error(`create ${kind}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { data: { id: string } }).data.id;
}

/** Appends bytes (optionally at an offset) and returns the response. */
export function append(server: TestServer, id: string, data: string | Buffer, offset?: number): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
  if (offset !== undefined) headers['x-log-offset'] = String(offset);
  return api(server, server.token)(`/v2/logs/${id}/chunks`, { method: 'POST', body: typeof data === 'string' ? data : new Uint8Array(data), headers });
}

export function finish(server: TestServer, id: string, status = 'SUCCEEDED', kind: 'build' | 'run' = 'build') {
  return api(server, server.token)(`/v2/actor-${kind}s/${id}`, { method: 'PUT', json: { status } });
}

/** Resolves once `predicate` holds, polling briefly; fails the test after `timeoutMs` instead of hanging. */
export async function waitFor(predicate: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
