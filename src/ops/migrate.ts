import { isTerminal, type JobKind, type JobRecord } from '../core/job.js';
import type { Store } from '../store/store.js';

/** A user or job that exists on both sides but is not the same one: copying stops rather than merging them. */
export class MigrationConflictError extends Error {}

export interface MigrationReport {
  users: number;
  jobs: number;
  /** Log bytes copied (the retained ones). */
  bytes: number;
  /** Users and jobs found copied already (by an earlier, interrupted run). */
  skipped: number;
  /** Copied jobs that had not finished: their producers go on against the new installation. */
  unfinished: number;
}

const PAGE = 500;
const KINDS: readonly JobKind[] = ['build', 'run'];

/**
 * Copies every user, job and retained log of `from` into `to` (`buildlog migrate`), keeping ids, tokens,
 * statuses and each log's offsets and checksum, so clients, `Range` reads and producers' `X-Log-Offset`
 * go on unchanged. Safe to run again after an interruption: what was copied whole is skipped; a user
 * or job that differs on the two sides stops the copy with a MigrationConflictError.
 */
export async function migrateStore(from: Store, to: Store): Promise<MigrationReport> {
  const report: MigrationReport = { users: 0, jobs: 0, bytes: 0, skipped: 0, unfinished: 0 };
  for (const user of await from.listUsers()) {
    const there = await to.userById(user.id);
    if (!there) {
      if (await to.userByName(user.username)) {
        throw new MigrationConflictError(`user "${user.username}" exists in the target already, with another id; nothing of it was copied`);
      }
      await to.createUser(user);
      report.users++;
    } else if (there.username !== user.username || there.tokenHash !== user.tokenHash) {
      throw new MigrationConflictError(`user id ${user.id} is "${there.username}" in the target but "${user.username}" here`);
    } else {
      report.skipped++;
    }
    for (const kind of KINDS) {
      for (let offset = 0; ; offset += PAGE) {
        const page = await from.listJobs({ userId: user.id, kind, offset, limit: PAGE, desc: false });
        for (const job of page.items) await copyJob(from, to, job, report);
        if (page.items.length < PAGE) break;
      }
    }
  }
  return report;
}

async function copyJob(from: Store, to: Store, job: JobRecord, report: MigrationReport): Promise<void> {
  const info = (await from.logInfo(job.id))!;
  const checksum = (await from.logChecksum(job.id))!;
  if (await to.getJob(job.id)) {
    const copied = (await to.logChecksum(job.id))!;
    if (copied.length === checksum.length && copied.crc32 === checksum.crc32) {
      report.skipped++;
      return;
    }
    // A job created by an interrupted run whose log was not copied yet gets it now; any other is someone else's.
    if (copied.length !== 0) {
      throw new MigrationConflictError(`job ${job.id} exists in the target with another log (${copied.length} bytes; here ${checksum.length})`);
    }
  } else {
    await to.createJob(job);
  }
  // The retained window in one read (as log-reads does for a whole log): it is bounded by the retention.
  const { start, data } = (await from.readLog(job.id, info.start, info.length - info.start))!;
  await to.importLog(job.id, { start, data, crc32: checksum.crc32 });
  const landed = (await to.logChecksum(job.id))!;
  if (landed.length !== checksum.length || landed.crc32 !== checksum.crc32) {
    throw new Error(`job ${job.id}: the copied log does not match its source (${landed.length} bytes, CRC ${landed.crc32}; source ${checksum.length}, ${checksum.crc32})`);
  }
  report.jobs++;
  report.bytes += data.length;
  if (!isTerminal(job.status)) report.unfinished++;
}
