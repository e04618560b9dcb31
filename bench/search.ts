// Log search: latency over many retained logs, and what the index costs appends.
//   node --import tsx bench/search.ts [logs=1000] [kibPerLog=100] [searches=60] [ingestMiB=1000] [ingestRounds=3] [sqlite|pg]
// Part 1 fills a server with `logs` logs of `kibPerLog` KiB of compiler-like lines, waits for the index,
// then times GET /v2/logs/search for a rare, a medium and a common word (p50, p95).
// Part 2 times bench/ingest.ts's workload (one log, 4 MiB appends over HTTP) with the index kept and
// without (--search-index-lazy: nothing is indexed before a search), alternating rounds, and prints the
// ratio of the medians. `pg`: the server stores in the machine's PostgreSQL (BUILDLOG_BENCH_DATABASE_URL),
// a schema of its own per server, where appends index in their own transaction (pg_trgm).
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import type { Config } from '../src/server/config.js';
import { api, append, createJob, startTestServer, type TestServer } from '../test/helpers/server.js';

const [logs, kibPerLog, searches, ingestMiB, ingestRounds] = [1000, 100, 60, 1000, 3].map((d, i) => Number(process.argv[2 + i] ?? d));
const backend = process.argv[7] ?? 'sqlite';
const DATABASE_URL = process.env.BUILDLOG_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A server on the chosen backend; `stop` also drops its PostgreSQL schema. */
async function startServer(overrides: Partial<Config>): Promise<TestServer> {
  if (backend !== 'pg') return startTestServer(overrides);
  const schema = `buildlog_bench_${newId().toLowerCase()}`;
  const server = await startTestServer({ ...overrides, databaseUrl: DATABASE_URL, databaseSchema: schema });
  return {
    ...server,
    async stop() {
      await server.stop();
      const db = new pg.Client({ connectionString: DATABASE_URL });
      await db.connect();
      await db.query(`DROP SCHEMA ${schema} CASCADE`);
      await db.end();
    },
  };
}

// mulberry32: a small seeded generator, so every run logs the same text.
let seed = 42;
const rand = (n: number) => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * n | 0;
};
const WORDS = ['compiling', 'linking', 'resolved', 'bundle', 'module', 'warning', 'cache', 'fetch', 'install', 'test', 'passed', 'chunk', 'emit', 'asset', 'optimize', 'worker', 'request', 'response', 'retry', 'socket'];

/** About `bytes` of log lines; `plant` words go into random lines. */
function logText(bytes: number, plant: string[]): string {
  const lines: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const words = Array.from({ length: 6 + rand(8) }, () => WORDS[rand(WORDS.length)]).join(' ');
    const line = `2026-11-30T10:${String(i % 60).padStart(2, '0')}:00.000Z [step ${i}] ${words} src/pkg${rand(500)}/file${rand(10_000)}.ts ${rand(999)}ms\n`;
    lines.push(line);
    size += line.length;
  }
  for (const word of plant) {
    const k = rand(lines.length);
    lines[k] = lines[k]!.replace('\n', ` ${word}\n`);
  }
  return lines.join('');
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
const median = (xs: number[]) => percentile(xs, 50);

async function searchPart(): Promise<void> {
  const server = await startServer({ rateLimitPerResource: 1_000_000, rateLimitPerClient: 100_000_000 });
  const call = api(server, server.token);
  const t0 = performance.now();
  for (let i = 0; i < logs; i++) {
    const id = await createJob(server, i % 2 ? 'build' : 'run', { actId: `app${i % 20}`, buildNumber: '0.1.1' });
    // Rare: in 5 logs; medium: in 10% of them; common: a word of every line.
    const plant = [...(i % 200 === 7 ? ['ECONNRESET'] : []), ...(i % 10 === 3 ? ['DeprecationWarning'] : [])];
    const res = await append(server, id, logText(kibPerLog * 1024, plant));
    if (res.status !== 200) throw new Error(`append: ${res.status}`);
  }
  const filled = performance.now();
  // A search waits (up to 10 s) for the indexer to catch up; caught up = the planted word in all its logs.
  const planted = Math.ceil((logs - 7) / 200);
  for (;;) {
    const body = (await (await call('/v2/logs/search?q=ECONNRESET')).json()) as { data: { total: number } };
    if (body.data.total >= planted) break;
  }
  const indexed = performance.now();
  console.log(`${backend}: ${logs} logs x ${kibPerLog} KiB: appended in ${((filled - t0) / 1000).toFixed(1)} s; index caught up ${((indexed - filled) / 1000).toFixed(1)} s later`);
  for (const q of ['ECONNRESET', 'DeprecationWarning', 'optimize']) {
    const times: number[] = [];
    let total = 0;
    for (let i = 0; i < searches; i++) {
      const s = performance.now();
      const res = await call(`/v2/logs/search?q=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { data: { total: number } };
      times.push(performance.now() - s);
      total = body.data.total;
    }
    console.log(`search "${q}" (${total} jobs match, first page of 20): p50 ${median(times).toFixed(1)} ms, p95 ${percentile(times, 95).toFixed(1)} ms`);
  }
  await server.stop();
}

/** MiB/s of bench/ingest.ts's workload on a fresh server. */
async function ingestOnce(lazy: boolean): Promise<number> {
  const server = await startServer({ rateLimitPerResource: 1_000_000, searchIndexLazy: lazy });
  const id = await createJob(server);
  // The indexer starts with the server; a search answers once it runs. Timed from then, as on a server that
  // has been up: started from TypeScript sources, its worker first compiles for about a CPU-second, which
  // is the server's start, not the appends' cost.
  if (!lazy) await fetch(`${server.url}/v2/logs/search?q=warm`, { headers: { authorization: `Bearer ${server.token}` } }).then((r) => r.arrayBuffer());
  const line = Buffer.from('2026-11-29T19:20:54.714Z some build output line, typical length of a compiler message\n');
  const chunk = Buffer.alloc(4096 * 1024);
  for (let i = 0; i < chunk.length; i += line.length) line.copy(chunk, i);
  const count = Math.round((ingestMiB * 1024) / 4096);
  const t0 = performance.now();
  for (let i = 0, offset = 0; i < count; i++, offset += chunk.length) {
    const res = await append(server, id, chunk, offset);
    if (res.status !== 200) throw new Error(`append ${i}: ${res.status}`);
    await res.arrayBuffer();
  }
  const secs = (performance.now() - t0) / 1000;
  await server.stop();
  return ingestMiB / secs;
}

async function ingestPart(): Promise<void> {
  const on: number[] = [];
  const off: number[] = [];
  for (let r = 0; r < ingestRounds; r++) {
    off.push(await ingestOnce(true));
    on.push(await ingestOnce(false));
  }
  const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
  console.log(`ingest ${ingestMiB} MiB in 4 MiB appends: index off ${f(off)} MiB/s, on ${f(on)} MiB/s; median on/off ${(median(on) / median(off)).toFixed(2)}`);
}

await searchPart();
await ingestPart();
