import { isTerminal, JOB_STATUSES, type JobRecord, type JobStatus } from '../core/job.js';
import type { UserRecord } from './store.js';

/** The terminal statuses as an SQL list, `('SUCCEEDED', ...)`, for `status IN` (packing, expiry). */
export const TERMINAL_SQL = `(${JOB_STATUSES.filter(isTerminal).map((s) => `'${s}'`).join(', ')})`;

/** Rows of the `users` and `jobs` tables as both stores return them (PostgreSQL's BIGINTs parsed to numbers), and their records. */

export interface JobRow {
  id: string;
  kind: 'build' | 'run';
  user_id: string;
  act_id: string;
  build_id: string | null;
  build_number: string | null;
  status: JobStatus;
  status_message: string | null;
  exit_code: number | null;
  origin: string;
  meta: string;
  options: string;
  started_at: number;
  finished_at: number | null;
}

export const toJob = (r: JobRow): JobRecord => ({
  id: r.id,
  kind: r.kind,
  userId: r.user_id,
  actId: r.act_id,
  buildId: r.build_id,
  buildNumber: r.build_number,
  status: r.status,
  statusMessage: r.status_message,
  exitCode: r.exit_code,
  origin: r.origin,
  meta: JSON.parse(r.meta) as Record<string, unknown>,
  options: JSON.parse(r.options) as Record<string, unknown>,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
});

export interface UserRow {
  id: string;
  username: string;
  token_hash: string;
  proxy_password: string;
  created_at: number;
}

export const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  tokenHash: r.token_hash,
  proxyPassword: r.proxy_password,
  createdAt: r.created_at,
});
