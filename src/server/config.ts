import { DEFAULT_RETENTION_CHARS } from '../core/retention.js';

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
  logLevel: string;
}

/** Command-line flags as commander gives them (strings), before env and defaults are applied. */
export interface ConfigFlags {
  host?: string;
  port?: string;
  data?: string;
  retentionChars?: string;
  maxBodyBytes?: string;
  private?: boolean;
  logLevel?: string;
}

export class ConfigError extends Error {}

function integer(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value.trim())) throw new ConfigError(`${name} must be a whole number, got "${value}"`);
  const n = Number(value);
  if (n < min || n > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${n}`);
  return n;
}

function boolean(name: string, value: string | undefined): boolean {
  if (value === undefined || value === '') return false;
  const v = value.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off'].includes(v)) return false;
  throw new ConfigError(`${name} must be true or false, got "${value}"`);
}

/** Flags win over environment variables, which win over defaults. */
export function resolveConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Config {
  return {
    host: flags.host ?? env.BUILDLOG_HOST ?? '127.0.0.1',
    port: integer('port', flags.port ?? env.BUILDLOG_PORT, DEFAULT_PORT, 0, 65535),
    dataDir: flags.data ?? env.BUILDLOG_DATA ?? './data',
    token: env.BUILDLOG_TOKEN || undefined,
    retentionChars: integer(
      'retention chars',
      flags.retentionChars ?? env.BUILDLOG_RETENTION_CHARS,
      DEFAULT_RETENTION_CHARS,
      1,
      Number.MAX_SAFE_INTEGER,
    ),
    maxBodyBytes: integer(
      'max body bytes',
      flags.maxBodyBytes ?? env.BUILDLOG_MAX_BODY_BYTES,
      8 * 1024 * 1024,
      1,
      1024 * 1024 * 1024,
    ),
    privateReads: flags.private ?? boolean('BUILDLOG_PRIVATE', env.BUILDLOG_PRIVATE),
    logLevel: flags.logLevel ?? env.BUILDLOG_LOG_LEVEL ?? 'info',
  };
}
