/**
 * How much room finished logs take once packed, on the generated build-output corpus (bench/build-corpus.ts),
 * and what reading a packed log costs. Real SqliteStore, real files.
 *
 *   node --import tsx bench/storage-ratio.ts
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newId } from '../src/core/ids.js';
import { SqliteStore } from '../src/store/sqlite.js';
import { CORPUS } from './build-corpus.js';

const JOBS = 20;
const LOG_BYTES = 400 * 1024;
/** Appends as `buildlog run` sends them: a few KiB of lines at a time. */
const APPEND = 4096;

const mb = (n: number) => (n / 1024 / 1024).toFixed(2);

async function readAll(store: SqliteStore, id: string, length: number): Promise<number> {
  const t = performance.now();
  for (let pos = 0; pos < length; ) {
    const s = (await store.readLog(id, pos, 256 * 1024))!;
    pos = s.end;
  }
  return performance.now() - t;
}

async function measure(kind: keyof typeof CORPUS) {
  const dataDir = mkdtempSync(join(tmpdir(), 'buildlog-ratio-'));
  const store = new SqliteStore({ dataDir, retentionChars: 50_000_000, background: false });
  try {
    const empty = await store.diskUsage();
    const ids: string[] = [];
    let raw = 0;
    for (let j = 0; j < JOBS; j++) {
      const id = newId();
      ids.push(id);
      await store.createJob({
        id, kind: 'build', userId: 'bench', actId: 'bench', buildId: null, buildNumber: null, status: 'RUNNING',
        statusMessage: null, exitCode: null, origin: 'API', meta: {}, options: {}, startedAt: Date.now(), finishedAt: null,
      });
      let text = '';
      for (let seed = j * 1000; Buffer.byteLength(text) < LOG_BYTES; seed++) text += CORPUS[kind](seed);
      const bytes = Buffer.from(text);
      raw += bytes.length;
      for (let i = 0; i < bytes.length; i += APPEND) await store.append(id, bytes.subarray(i, i + APPEND));
    }
    const plain = (await store.diskUsage()) - empty;
    let plainRead = 0;
    for (const id of ids) plainRead += await readAll(store, id, (await store.logInfo(id))!.length);
    for (const id of ids) await store.updateJobStatus(id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: Date.now() });
    const t = performance.now();
    await store.packFinishedLogs();
    const packTime = performance.now() - t;
    while ((await store.reclaimSpace()) > 0);
    const packed = (await store.diskUsage()) - empty;
    let packedRead = 0;
    for (const id of ids) packedRead += await readAll(store, id, (await store.logInfo(id))!.length);
    return { kind, raw, plain, packed, packTime, plainRead, packedRead };
  } finally {
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const rows = [];
for (const kind of Object.keys(CORPUS) as (keyof typeof CORPUS)[]) rows.push(await measure(kind));
const total = rows.reduce((a, r) => ({ raw: a.raw + r.raw, plain: a.plain + r.plain, packed: a.packed + r.packed }), { raw: 0, plain: 0, packed: 0 });
console.log(`${JOBS} finished logs of ~${LOG_BYTES / 1024} KiB per kind, appended in ${APPEND}-byte chunks\n`);
console.log('kind          log MiB  stored MiB (running)  stored MiB (packed)  ratio   pack MiB/s  read MiB/s plain / packed');
for (const r of rows) {
  console.log(
    `${r.kind.padEnd(12)}  ${mb(r.raw).padStart(7)}  ${mb(r.plain).padStart(20)}  ${mb(r.packed).padStart(19)}  ${(r.plain / r.packed).toFixed(1).padStart(5)}x` +
      `  ${(r.raw / 1024 / 1024 / (r.packTime / 1000)).toFixed(0).padStart(10)}  ${(r.raw / 1024 / 1024 / (r.plainRead / 1000)).toFixed(0).padStart(10)} / ${(r.raw / 1024 / 1024 / (r.packedRead / 1000)).toFixed(0)}`,
  );
}
console.log(`${'all'.padEnd(12)}  ${mb(total.raw).padStart(7)}  ${mb(total.plain).padStart(20)}  ${mb(total.packed).padStart(19)}  ${(total.plain / total.packed).toFixed(1).padStart(5)}x`);
