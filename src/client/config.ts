/** Where the commands that talk to a server find it: flags win over BUILDLOG_URL / BUILDLOG_TOKEN. */
export const DEFAULT_URL = 'http://127.0.0.1:8370';

export interface ClientFlags {
  url?: string;
  token?: string;
}

export interface ClientConfig {
  /** Base URL without a trailing slash and without /v2. */
  url: string;
  token?: string;
}

/** A mistake in how the command was invoked (exit code 2). */
export class UsageError extends Error {}

export function resolveClientConfig(flags: ClientFlags, env: NodeJS.ProcessEnv = process.env): ClientConfig {
  const raw = flags.url ?? (env.BUILDLOG_URL || DEFAULT_URL);
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new UsageError(`server URL must be an http(s) URL such as ${DEFAULT_URL}, got "${raw}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new UsageError(`server URL must be an http(s) URL such as ${DEFAULT_URL}, got "${raw}"`);
  }
  // The Apify clients take the base URL without /v2; accept it with /v2 too.
  const url = `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '').replace(/\/v2$/, '');
  const token = flags.token ?? (env.BUILDLOG_TOKEN || undefined);
  return { url, ...(token ? { token } : {}) };
}
