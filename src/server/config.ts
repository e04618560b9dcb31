import { DEFAULT_RETENTION_CHARS } from '../core/retention.js';
import { DEFAULT_READ_CACHE_BYTES } from '../core/service.js';

export const DEFAULT_PORT = 8370;

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  /** A token some user must own (`BUILDLOG_TOKEN`); created as user "admin" if no user has it. */
  token?: string;
  retentionChars: number;
  maxBodyBytes: number;
  /** Reads need the owner's token too (by default the hard-to-guess id is the capability, as in Apify). */
  privateReads: boolean;
  /** Build the search index only when the first search comes, not in the background while logs arrive. */
  searchIndexLazy: boolean;
  logLevel: string;
  /** `pretty` for people, `json` (one object a line) for log collectors; unset: pretty on a terminal, else json. */
  logFormat?: LogFormat;
  /** Requests per second to one job (its object or log); Apify's default. */
  rateLimitPerResource: number;
  /** Requests per minute per user (per IP without a token); Apify's default. */
  rateLimitPerClient: number;
  /** Streaming log responses one client may hold open at once. */
  maxStreamsPerClient: number;
  /** Jobs one user may create; 0 = no limit. */
  maxJobsPerUser: number;
  /** Log bytes one user may store over all jobs; 0 = no limit. */
  maxBytesPerUser: number;
  /** How long a graceful run abort stays ABORTING before the server sets ABORTED. */
  gracefulAbortSecs: number;
  /** An unfinished job with no append, heartbeat or status change for this long becomes TIMED-OUT; 0 = never. */
  inactivityTimeoutSecs: number;
  /** fsync every commit (the default): acknowledged appends survive power loss and a failing disk, not only a crash of the server. */
  fsync: boolean;
  /** Bytes of finished logs (their final views and compressed forms) kept in memory, ready to serve. */
  readCacheBytes: number;
  /** How long a client has to send its request headers (slow or half-open connections are closed after it). */
  headersTimeoutSecs: number;
  /** How long a client has to send a whole request (an append's body); responses are not bounded. */
  requestTimeoutSecs: number;
  /** PostgreSQL instead of the embedded SQLite store (the scale-out mode). */
  databaseUrl?: string;
  /** The PostgreSQL schema holding buildlog's tables. */
  databaseSchema: string;
  /** Redis for the live fan-out between nodes (with databaseUrl). */
  redisUrl?: string;
  /** `GET /metrics` needs `Authorization: Bearer <this>` when set. */
  metricsToken?: string;
  /** Finished jobs older than this are deleted with their log; 0 = keep everything. */
  expireAfterSecs: number;
  /** Past this many bytes of storage, appends are refused with 507; 0 = no limit. */
  maxDiskUsageBytes: number;
}

export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** `duration`: `90s`, `15m`, `12h`, `30d` or plain seconds; `size`: bytes, or `3MB`, `500MB`, `2GiB`. */
type Kind = 'string' | 'integer' | 'boolean' | 'choice' | 'duration' | 'size';

interface Setting {
  key: keyof Config;
  flag: string;
  env: string;
  kind: Kind;
  help: string;
  default?: string | number | boolean;
  /** The values a `choice` takes. */
  choices?: readonly string[];
  min?: number;
  max?: number;
}

/** Every server setting once: the `serve` flags, their environment variables and defaults come from here. */
export const SERVER_SETTINGS: readonly Setting[] = [
  { key: 'host', flag: '--host <host>', env: 'BUILDLOG_HOST', kind: 'string', default: '127.0.0.1', help: 'address to listen on' },
  { key: 'port', flag: '--port <port>', env: 'BUILDLOG_PORT', kind: 'integer', default: DEFAULT_PORT, min: 0, max: 65535, help: 'port to listen on (0 picks a free one)' },
  { key: 'dataDir', flag: '--data <dir>', env: 'BUILDLOG_DATA', kind: 'string', default: './data', help: 'data directory' },
  { key: 'retentionChars', flag: '--retention-chars <n>', env: 'BUILDLOG_RETENTION_CHARS', kind: 'integer', default: DEFAULT_RETENTION_CHARS, min: 1, help: 'characters kept per log (the trailing ones)' },
  { key: 'maxBodyBytes', flag: '--max-body-bytes <n>', env: 'BUILDLOG_MAX_BODY_BYTES', kind: 'integer', default: 8 * 1024 * 1024, min: 1, max: 1024 * 1024 * 1024, help: 'largest append body, after inflating' },
  { key: 'privateReads', flag: '--private', env: 'BUILDLOG_PRIVATE', kind: 'boolean', default: false, help: "reads need the owner's token too" },
  { key: 'searchIndexLazy', flag: '--search-index-lazy', env: 'BUILDLOG_SEARCH_INDEX_LAZY', kind: 'boolean', default: false, help: 'index logs for search only when the first search comes (saves the indexing CPU until then)' },
  { key: 'logLevel', flag: '--log-level <level>', env: 'BUILDLOG_LOG_LEVEL', kind: 'choice', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'server log level (fatal, error, warn, info, debug, trace, silent)' },
  { key: 'logFormat', flag: '--log-format <format>', env: 'BUILDLOG_LOG_FORMAT', kind: 'choice', choices: LOG_FORMATS, help: 'server log on stdout: pretty or json (default: pretty on a terminal, json otherwise)' },
  { key: 'rateLimitPerResource', flag: '--rate-limit-resource <n>', env: 'BUILDLOG_RATE_LIMIT_RESOURCE', kind: 'integer', default: 60, min: 1, help: 'requests per second to one job' },
  { key: 'rateLimitPerClient', flag: '--rate-limit-client <n>', env: 'BUILDLOG_RATE_LIMIT_CLIENT', kind: 'integer', default: 250_000, min: 1, help: 'requests per minute per user (per IP without a token)' },
  { key: 'maxStreamsPerClient', flag: '--max-streams <n>', env: 'BUILDLOG_MAX_STREAMS', kind: 'integer', default: 100, min: 1, help: 'streaming log responses open at once per user (per IP without a token)' },
  { key: 'maxJobsPerUser', flag: '--max-jobs-per-user <n>', env: 'BUILDLOG_MAX_JOBS_PER_USER', kind: 'integer', default: 0, min: 0, help: 'jobs one user may create (0: no limit)' },
  { key: 'maxBytesPerUser', flag: '--max-bytes-per-user <n>', env: 'BUILDLOG_MAX_BYTES_PER_USER', kind: 'integer', default: 0, min: 0, help: 'log bytes one user may append over all jobs (0: no limit)' },
  { key: 'inactivityTimeoutSecs', flag: '--inactivity-timeout-secs <n>', env: 'BUILDLOG_INACTIVITY_TIMEOUT_SECS', kind: 'integer', default: 3600, min: 0, help: 'unfinished jobs silent this long become TIMED-OUT (0: never)' },
  { key: 'gracefulAbortSecs', flag: '--graceful-abort-secs <n>', env: 'BUILDLOG_GRACEFUL_ABORT_SECS', kind: 'integer', default: 30, min: 0, max: 86_400, help: 'how long a graceful abort waits before ABORTED' },
  { key: 'fsync', flag: '--fsync <yes|no>', env: 'BUILDLOG_FSYNC', kind: 'boolean', default: true, help: 'fsync every commit, so acknowledged appends survive power loss too; "no" keeps them safe from a crash of the server only' },
  { key: 'readCacheBytes', flag: '--read-cache-bytes <n>', env: 'BUILDLOG_READ_CACHE_BYTES', kind: 'integer', default: DEFAULT_READ_CACHE_BYTES, min: 0, help: 'memory for finished logs ready to serve (raw, stripped and compressed forms)' },
  { key: 'databaseUrl', flag: '--database-url <url>', env: 'BUILDLOG_DATABASE_URL', kind: 'string', help: 'PostgreSQL (postgres://...) instead of the embedded store in --data: nodes sharing it form one installation' },
  { key: 'databaseSchema', flag: '--database-schema <name>', env: 'BUILDLOG_DATABASE_SCHEMA', kind: 'string', default: 'public', help: 'PostgreSQL schema for buildlog\'s tables (created if missing)' },
  { key: 'redisUrl', flag: '--redis-url <url>', env: 'BUILDLOG_REDIS_URL', kind: 'string', help: 'Redis (redis://...) carrying live logs between the nodes of a --database-url installation' },
  { key: 'headersTimeoutSecs', flag: '--headers-timeout <secs>', env: 'BUILDLOG_HEADERS_TIMEOUT', kind: 'integer', default: 15, min: 1, max: 120, help: 'seconds a client has to send its request headers' },
  { key: 'requestTimeoutSecs', flag: '--request-timeout <secs>', env: 'BUILDLOG_REQUEST_TIMEOUT', kind: 'integer', default: 120, min: 1, max: 3600, help: 'seconds a client has to send a whole request (an append body); responses, such as a live stream, are not bounded' },
  { key: 'metricsToken', flag: '--metrics-token <token>', env: 'BUILDLOG_METRICS_TOKEN', kind: 'string', help: 'GET /metrics requires Authorization: Bearer <token>' },
  { key: 'expireAfterSecs', flag: '--expire-after <duration>', env: 'BUILDLOG_EXPIRE_AFTER', kind: 'duration', default: '30d', help: 'delete finished jobs and their logs this long after they finished (30d, 12h, 90s; 0: keep everything)' },
  { key: 'maxDiskUsageBytes', flag: '--max-disk-usage <size>', env: 'BUILDLOG_MAX_DISK_USAGE', kind: 'size', default: '0', help: 'refuse appends (507) once the store uses this much (bytes, or 3MB, 500MB, 2GiB; 0: no limit)' },
];

/** Command-line flags as commander gives them (camel-cased, strings), before env and defaults are applied. */
export type ConfigFlags = Record<string, string | boolean | undefined>;

export class ConfigError extends Error {}

/** The commander property name of a flag: `--rate-limit-resource <n>` → `rateLimitResource`. */
export function flagProperty(flag: string): string {
  return flag
    .split(' ')[0]!
    .replace(/^--/, '')
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

const DURATION_UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** `30d` → 2592000 (seconds); `0` → 0. */
export function parseDuration(raw: string, source = 'duration'): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? DURATION_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new ConfigError(`${source} must be a duration such as 90s, 15m, 12h or 30d, got "${raw}"`);
  return Number(m[1]) * unit;
}

/** `3MB` → 3000000, `2GiB` → 2147483648, `1024` → 1024 (bytes). */
export function parseSize(raw: string, source = 'size'): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(raw.trim());
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new ConfigError(`${source} must be a size in bytes, or such as 3MB, 500MB or 2GiB, got "${raw}"`);
  return Math.floor(Number(m[1]) * unit);
}

function parse(setting: Setting, raw: string | boolean, source: string): string | number | boolean {
  if (setting.kind === 'string') return String(raw);
  if (setting.kind === 'choice') {
    const v = String(raw).trim().toLowerCase();
    if (!setting.choices!.includes(v)) throw new ConfigError(`${source} must be one of ${setting.choices!.join(', ')}, got "${raw}"`);
    return v;
  }
  if (setting.kind === 'duration') return parseDuration(String(raw), source);
  if (setting.kind === 'size') return parseSize(String(raw), source);
  if (setting.kind === 'boolean') {
    if (typeof raw === 'boolean') return raw;
    const v = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
    throw new ConfigError(`${source} must be true or false, got "${raw}"`);
  }
  const text = String(raw).trim();
  if (!/^\d+$/.test(text)) throw new ConfigError(`${source} must be a whole number, got "${raw}"`);
  const n = Number(text);
  const min = setting.min ?? 0;
  const max = setting.max ?? Number.MAX_SAFE_INTEGER;
  if (n < min || n > max) throw new ConfigError(`${source} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** Flags win over environment variables, which win over defaults. */
export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Config {
  const config: Record<string, unknown> = { token: env.BUILDLOG_TOKEN || undefined };
  for (const s of SERVER_SETTINGS) {
    const flag = flags[flagProperty(s.flag)];
    const fromEnv = env[s.env];
    if (flag !== undefined) config[s.key] = parse(s, flag, s.flag.split(' ')[0]!.replace(/^--/, ''));
    else if (fromEnv !== undefined && fromEnv !== '') config[s.key] = parse(s, fromEnv, s.env);
    // Durations and sizes keep their readable default (`30d`) in the table, for the help text.
    else config[s.key] = typeof s.default === 'string' ? parse(s, s.default, 'default') : s.default;
  }
  return config as unknown as Config;
}
