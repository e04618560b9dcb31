import type { JobStatus } from '../core/job.js';

/** New bytes [start, end) of a job's log are durable. `data`, when present, is those bytes, shared by every follower. */
export interface AppendEvent {
  type: 'append';
  jobId: string;
  start: number;
  end: number;
  data?: Buffer;
  /** When the bytes were committed, as `eventTime()` (for the fan-out delay metric). */
  at?: number;
}

/** A job changed status. */
export interface StatusEvent {
  type: 'status';
  jobId: string;
  status: JobStatus;
}

/** A job and its log were deleted: followers end after what they sent, waiters answer (with a 404). */
export interface DeletedEvent {
  type: 'deleted';
  jobId: string;
}

/**
 * Events of this job may have been lost (a networked bus lost its connection for a while): listeners re-read
 * the job and its log from the store.
 */
export interface ResyncEvent {
  type: 'resync';
  jobId: string;
}

/** Milliseconds since the epoch with sub-millisecond precision, comparable between processes. */
export const eventTime = (): number => performance.timeOrigin + performance.now();

export type LiveEvent = AppendEvent | StatusEvent | DeletedEvent | ResyncEvent;
export type LiveListener = (event: LiveEvent) => void;

/**
 * Push-based fan-out of what happened to a job, to every follower on every node. Delivery is in publish
 * order per job but may be lossy across nodes; followers therefore treat events as hints and read any gap
 * back from the store. Every implementation passes test/live.contract.ts.
 */
export interface LiveBus {
  publish(event: LiveEvent): void;
  /** Returns the function that unsubscribes. */
  subscribe(jobId: string, listener: LiveListener): () => void;
  /** A networked bus: resolves when its connections answer (readiness); an in-process bus has none. */
  probe?(): Promise<void>;
  close(): Promise<void>;
}
