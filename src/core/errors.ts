import type { JobKind, JobStatus } from './job.js';

/**
 * Why the service refused an operation, with the data the caller may need. What a client sees of it
 * (status, Apify type, message, headers) is the API's choice (api/api-error.ts).
 */
export type Refusal =
  /** No such job, or not of this kind. */
  | { reason: 'job-not-found'; kind: JobKind | 'any' }
  /** The job belongs to another user. */
  | { reason: 'not-owner' }
  | { reason: 'job-quota'; username: string; limit: number }
  | { reason: 'byte-quota'; limit: number }
  /** A verified finish whose length or CRC-32 differs from what the store received (`length` bytes). */
  | { reason: 'length-mismatch'; length: number; sent: number }
  | { reason: 'crc-mismatch'; length: number; crc32: number; sent: number }
  /** An append at an offset that is not the log's length. */
  | { reason: 'offset-mismatch'; offset: number; length: number }
  /** An append to a log whose job has ended. */
  | { reason: 'job-finished'; status: JobStatus }
  | { reason: 'bad-transition'; from: JobStatus; to: JobStatus };

/** A refusal of the job service: the request was understood and is not allowed as things stand. */
export class DomainError extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
    this.name = 'DomainError';
  }
}

export const refuse = (refusal: Refusal) => new DomainError(refusal);
