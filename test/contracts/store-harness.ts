/**
 * What the Store contract's parts share: the store under test, fixtures (users, jobs), checked appends and
 * reads, and `harness(open)`, which gives every part the same `withStore` and `withJob`.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { JobRecord } from '../../src/core/job.js';
import { newId } from '../../src/core/ids.js';
import type { AppendResult, Store, UserRecord } from '../../src/store/store.js';

export interface StoreUnderTest {
  /** A fresh, empty store. */
  store: Store;
  /**
   * Opens a new Store on the same place (same data dir, same database/schema) with the same options.
   * The test closes the previous store first. The contract may call it more than once.
   */
  reopen(): Promise<Store>;
  /** Closes every store still open from this place (close() must be idempotent) and removes the place. */
  cleanup(): Promise<void>;
}

export interface StoreOpenOptions {
  /** Characters each log keeps (the retention window). */
  retentionChars: number;
}

/** Runs a test with a fresh store and cleans up (what the contract's parts are given). */
export type WithStore = (opts: Partial<StoreOpenOptions>, fn: (s: StoreUnderTest) => Promise<void>) => Promise<void>;

export type OpenStore = (opts: StoreOpenOptions) => Promise<StoreUnderTest>;

/** Large enough that nothing is trimmed in the tests that are not about retention. */
export const NO_TRIM = 50_000_000;

let counter = 0;
const uniq = (): string => `${Date.now().toString(36)}${(++counter).toString(36)}`;

export function makeUser(overrides: Partial<UserRecord> = {}): UserRecord {
  const u = uniq();
  return {
    id: newId(),
    username: `user-${u}`,
    tokenHash: `hash-${u}-${randomBytes(8).toString('hex')}`,
    proxyPassword: `proxy-${u}`,
    createdAt: 1_700_000_000_000 + counter,
    ...overrides,
  };
}

export function makeJob(overrides: Partial<JobRecord> = {}): JobRecord {
  return {
    id: newId(),
    kind: 'build',
    userId: 'owner0000000000000',
    actId: 'actor00000000000a',
    buildId: null,
    buildNumber: '0.0.1',
    status: 'RUNNING',
    statusMessage: null,
    exitCode: null,
    origin: 'API',
    meta: { origin: 'API', nested: { list: [1, 'two', null], flag: true } },
    options: { memoryMbytes: 1024, build: 'latest' },
    startedAt: 1_700_000_000_000,
    finishedAt: null,
    ...overrides,
  };
}

export const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** Appends and asserts it was appended at `start`. */
export async function mustAppend(store: Store, jobId: string, data: Buffer | string, expectedOffset?: number): Promise<AppendResult> {
  const buf = typeof data === 'string' ? b(data) : data;
  const before = await store.logInfo(jobId);
  const r = await store.append(jobId, buf, expectedOffset);
  assert.deepEqual(r, { kind: 'appended', start: before!.length, end: before!.length + buf.length });
  return r;
}

/** The whole retained log, read in pages of `page` bytes; checks every slice is consistent. */
export async function readAll(store: Store, jobId: string, from = 0, page = 1 << 20): Promise<{ start: number; end: number; data: Buffer }> {
  const info = await store.logInfo(jobId);
  assert.ok(info, `log ${jobId} exists`);
  const parts: Buffer[] = [];
  let first: number | null = null;
  let pos = from;
  for (;;) {
    const s = await store.readLog(jobId, pos, page);
    assert.ok(s);
    assert.equal(s.data.length, s.end - s.start, 'slice data length matches its offsets');
    assert.ok(s.data.length <= page, 'slice never exceeds maxBytes');
    if (first === null) first = s.start;
    else assert.equal(s.start, pos, 'a following page starts where the previous ended');
    pos = s.end;
    if (s.end === s.start) break;
    parts.push(s.data);
  }
  assert.equal(pos, info.length, 'read up to the end');
  return { start: first!, end: pos, data: Buffer.concat(parts) };
}

export const isContinuation = (byte: number): boolean => (byte & 0xc0) === 0x80;

/** Byte offset where the trailing `n` characters (UTF-8 sequence starts) of `all` begin. */
export function tailStart(all: Buffer, n: number): number {
  let seen = 0;
  for (let i = all.length - 1; i >= 0; i--) {
    if (!isContinuation(all[i]!)) {
      seen++;
      if (seen === n) return i;
    }
  }
  return 0;
}

export type WithJob = (opts: Partial<StoreOpenOptions>, fn: (store: Store, job: JobRecord, sut: StoreUnderTest) => Promise<void>) => Promise<void>;

export function harness(open: OpenStore): { withStore: WithStore; withJob: WithJob } {
  /** Runs `fn` with a fresh store and always cleans up. */
  async function withStore(opts: Partial<StoreOpenOptions>, fn: (s: StoreUnderTest) => Promise<void>): Promise<void> {
    const sut = await open({ retentionChars: NO_TRIM, ...opts });
    try {
      await fn(sut);
    } finally {
      await sut.cleanup();
    }
  }

  /** A store plus one RUNNING job. */
  async function withJob(opts: Partial<StoreOpenOptions>, fn: (store: Store, job: JobRecord, sut: StoreUnderTest) => Promise<void>): Promise<void> {
    await withStore(opts, async (sut) => {
      const job = makeJob();
      await sut.store.createJob(job);
      await fn(sut.store, job, sut);
    });
  }

  return { withStore, withJob };
}
