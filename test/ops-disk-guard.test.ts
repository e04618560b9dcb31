// --max-disk-usage: past the limit appends are 507 insufficient-storage in the envelope, reads go on, and
// appends resume once room is freed (here by packing a finished log; expiry and deletion free it too).
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { append, createJob, finish, startTestServer, waitFor, type TestServer } from './helpers/server.js';

const servers: TestServer[] = [];
after(async () => {
  for (const s of servers) await s.stop();
});

describe('disk guard', () => {
  test('past --max-disk-usage appends are 507 until room is freed; reads, heartbeats and status changes go on', { timeout: 60_000 }, async () => {
    // Retention well above what is appended before the guard refuses (usage is measured each second, so
    // several MB may arrive first): the log is kept whole and must read the same before and after packing.
    const server = await startTestServer({ maxDiskUsageBytes: 2_000_000, rateLimitPerResource: 1_000_000, retentionChars: 200_000_000 });
    servers.push(server);
    const id = await createJob(server);
    // Very compressible build output, so that packing it once finished frees most of its room.
    const chunk = Buffer.from('npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.\n'.repeat(3000));
    let offset = 0;
    let refused: Response | null = null;
    // The usage is measured each second: keep appending until the guard says no (bounded).
    await waitFor(async () => {
      const res = await append(server, id, chunk, offset);
      if (res.status === 200) {
        await res.arrayBuffer();
        offset += chunk.length;
        return false;
      }
      refused = res;
      return true;
    }, 30_000, 'the disk guard to refuse appends');
    const res = refused! as Response;
    assert.equal(res.status, 507);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    const body = (await res.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'insufficient-storage');
    assert.match(body.error.message, /over its limit of 2000000 \(--max-disk-usage\)/);
    assert.ok(offset >= 2_000_000 * 0.5, `${offset} bytes were accepted first`);

    // Reads go on, heartbeats keep the job alive, a second job can be created and finished.
    const readLog = async () => Buffer.from(await (await fetch(`${server.url}/v2/logs/${id}?raw=1`)).arrayBuffer());
    const before = await readLog();
    assert.equal(before.length, offset);
    assert.equal((await append(server, id, '', offset)).status, 200, 'a heartbeat is not refused');
    const other = await createJob(server);
    assert.equal((await append(server, other, 'x')).status, 507);
    assert.equal((await finish(server, other)).status, 200);

    // Finishing the big log packs it (gzip), which frees most of its room; appends resume.
    assert.equal((await finish(server, id)).status, 200);
    await server.service.store.packFinishedLogs();
    await server.diskGuard.measure();
    assert.ok(server.diskGuard.usage < 2_000_000, `usage ${server.diskGuard.usage} after packing`);
    const third = await createJob(server);
    assert.equal((await append(server, third, 'room again\n')).status, 200);
    assert.ok((await readLog()).equals(before), 'the packed log reads the same');
  });
});
