// Ingest throughput of one log: N MiB appended in chunks of C KiB over HTTP, one request at a time
// (as `buildlog run` does), against the in-process server. Prints MiB/s.
//   node --import tsx bench/ingest.ts [totalMiB=100] [chunkKiB=4096] [retentionChars=5000000]
import { append, createJob, startTestServer } from '../test/helpers/server.js';

const totalMiB = Number(process.argv[2] ?? 100);
const chunkKiB = Number(process.argv[3] ?? 4096);
const retentionChars = Number(process.argv[4] ?? 5_000_000);
const server = await startTestServer({ retentionChars, rateLimitPerResource: 1_000_000 });
const id = await createJob(server);
const line = Buffer.from('2026-11-29T19:20:54.714Z some build output line, typical length of a compiler message\n');
const chunk = Buffer.alloc(chunkKiB * 1024);
for (let i = 0; i < chunk.length; i += line.length) line.copy(chunk, i);
const count = Math.round((totalMiB * 1024) / chunkKiB);
const t0 = performance.now();
let offset = 0;
for (let i = 0; i < count; i++) {
  const res = await append(server, id, chunk, offset);
  if (res.status !== 200) throw new Error(`append ${i}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
  offset += chunk.length;
}
const secs = (performance.now() - t0) / 1000;
console.log(`${totalMiB} MiB in ${chunkKiB} KiB chunks, retention ${retentionChars}: ${secs.toFixed(2)} s, ${(totalMiB / secs).toFixed(1)} MiB/s`);
await server.stop();
