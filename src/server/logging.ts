import type { FastifyRequest } from 'fastify';
import { prettyFactory } from 'pino-pretty';
import type { LogFormat } from './config.js';

/** A query key the router would read as `token` (it decodes %-escapes and `+` in keys). */
function isTokenKey(key: string): boolean {
  let decoded = key.replace(/\+/g, ' ');
  try {
    decoded = decodeURIComponent(decoded);
  } catch {
    // Not valid %-encoding: the raw key is what it is.
  }
  return decoded.trim().toLowerCase() === 'token';
}

/**
 * `?token=...` in a URL, with its value replaced: tokens never reach the server log. Keys are matched as the
 * router reads them: the query starts at `?` or `#`, and `%74oken` is `token` too.
 */
export function redactUrl(url: string): string {
  return url.replace(/([?&#])([^?&#=]*)=([^&]*)/g, (param, sep: string, key: string, value: string) => {
    if (isTokenKey(key)) return `${sep}${key}=[REDACTED]`;
    // Over-redact rather than miss one: a `#` inside a value may start what a client meant as the query.
    const hash = value.indexOf('#');
    return hash === -1 ? param : `${sep}${key}=${value.slice(0, hash)}${redactUrl(value.slice(hash))}`;
  });
}

/** The format asked for, else pretty for a person at a terminal and JSON lines for whatever collects stdout. */
export function chooseLogFormat(format: LogFormat | undefined, stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return format ?? (stdout.isTTY ? 'pretty' : 'json');
}

/**
 * pino-pretty's formatter, run in this thread and written synchronously: its stream and transport forms
 * pass lines on asynchronously, and the last lines before an exit (the shutdown) would be lost.
 */
function prettyStdout() {
  const pretty = prettyFactory({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true });
  return { write: (line: string) => process.stdout.write(pretty(line)) };
}

/**
 * pino options for the server log on stdout: JSON, one object a line (pino's own), or pino-pretty's
 * lines. The request serializer logs method, redacted URL and address only; headers (so `Authorization`)
 * are never logged.
 */
export function loggerOptions(level: string, format: LogFormat) {
  return {
    level,
    ...(format === 'pretty' ? { stream: prettyStdout() } : {}),
    serializers: {
      req: (req: FastifyRequest) => ({ method: req.method, url: redactUrl(req.url), remoteAddress: req.ip }),
    },
  };
}
