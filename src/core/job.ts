import { refuse } from './errors.js';

export type JobKind = 'build' | 'run';

export const JOB_STATUSES = [
  'READY',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'TIMING-OUT',
  'TIMED-OUT',
  'ABORTING',
  'ABORTED',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

const TERMINAL: ReadonlySet<JobStatus> = new Set(['SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED']);

export function isTerminal(status: JobStatus): boolean {
  return TERMINAL.has(status);
}

export function isJobStatus(value: unknown): value is JobStatus {
  return typeof value === 'string' && (JOB_STATUSES as readonly string[]).includes(value);
}

/**
 * Apify's lifecycle: READY → RUNNING → terminal, with ABORTING → ABORTED and TIMING-OUT → TIMED-OUT
 * on the way. A terminal status is final.
 */
const NEXT: Record<JobStatus, readonly JobStatus[]> = {
  READY: ['RUNNING', 'ABORTING', 'TIMING-OUT', 'SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED'],
  RUNNING: ['ABORTING', 'TIMING-OUT', 'SUCCEEDED', 'FAILED', 'TIMED-OUT', 'ABORTED'],
  ABORTING: ['ABORTED'],
  'TIMING-OUT': ['TIMED-OUT'],
  SUCCEEDED: [],
  FAILED: [],
  'TIMED-OUT': [],
  ABORTED: [],
};

export function canTransition(from: JobStatus, to: JobStatus): boolean {
  return NEXT[from].includes(to);
}

/** Refuses a transition the lifecycle does not allow. */
export function assertTransition(from: JobStatus, to: JobStatus): void {
  if (!canTransition(from, to)) {
    throw refuse({ reason: 'bad-transition', from, to });
  }
}

/** A job as the store keeps it; times are epoch milliseconds. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  userId: string;
  actId: string;
  buildId: string | null;
  buildNumber: string | null;
  status: JobStatus;
  statusMessage: string | null;
  exitCode: number | null;
  origin: string;
  meta: Record<string, unknown>;
  options: Record<string, unknown>;
  startedAt: number;
  finishedAt: number | null;
}

/** What a status change writes besides the status itself. */
export interface StatusPatch {
  status: JobStatus;
  statusMessage?: string | null;
  exitCode?: number | null;
  finishedAt?: number | null;
}
