// A terminal PUT with logLength + logCrc32: 409 log-mismatch when the server's log differs, success once it matches.
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { append, api, createJob, startTestServer, type TestServer } from './helpers/server.js';

describe('verified finish', () => {
  let server: TestServer;
  let call: ReturnType<typeof api>;
  before(async () => {
    server = await startTestServer({ retentionChars: 16 });
    call = api(server, server.token);
  });
  after(() => server.stop());

  const put = (id: string, json: object) => call(`/v2/actor-builds/${id}`, { method: 'PUT', json });
  const statusOf = async (id: string) => ((await (await call(`/v2/actor-builds/${id}`)).json()) as { data: { status: string } }).data.status;

  test('a short log is 409 with the length the server has; the producer sends the rest and finishes', async () => {
    const id = await createJob(server);
    const all = Buffer.from('line one\nline two\nline three\n');
    assert.equal((await append(server, id, all.subarray(0, 9), 0)).status, 200);
    const proof = { status: 'SUCCEEDED', logLength: all.length, logCrc32: crc32(all) };

    const short = await put(id, proof);
    assert.equal(short.status, 409);
    assert.equal(short.headers.get('x-log-length'), '9');
    const body = (await short.json()) as { error: { type: string; message: string } };
    assert.equal(body.error.type, 'log-mismatch');
    assert.match(body.error.message, /9 bytes, not the 29/);
    assert.equal(await statusOf(id), 'RUNNING', 'the status did not change');

    assert.equal((await append(server, id, all.subarray(9), 9)).status, 200);
    const done = await put(id, proof);
    assert.equal(done.status, 200, await done.clone().text());
    assert.equal(await statusOf(id), 'SUCCEEDED');
  });

  test('bytes that differ (same length) are 409 by their CRC, also after retention dropped the head', async () => {
    const id = await createJob(server);
    const sent = Buffer.from('compiling 42 files... done in 3.1 s\n');
    const received = Buffer.from('compiling 42 files... done in 3.7 s\n');
    await append(server, id, received, 0);
    const bad = await put(id, { status: 'FAILED', logLength: sent.length, logCrc32: crc32(sent) });
    assert.equal(bad.status, 409);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /CRC-32/);
    assert.equal(await statusOf(id), 'RUNNING');
    assert.equal((await put(id, { status: 'FAILED', logLength: received.length, logCrc32: crc32(received) })).status, 200);
  });

  test('bad values are 400; a finish without proof is not checked; an already terminal job answers as before', async () => {
    const id = await createJob(server);
    for (const [field, value] of [['logLength', -1], ['logLength', '12'], ['logCrc32', 2 ** 32], ['logCrc32', 1.5]] as const) {
      const res = await put(id, { status: 'SUCCEEDED', [field]: value });
      assert.equal(res.status, 400, `${field}=${value}`);
      assert.match(((await res.json()) as { error: { message: string } }).error.message, new RegExp(field));
    }
    await append(server, id, 'x', 0);
    assert.equal((await put(id, { status: 'SUCCEEDED' })).status, 200);
    // Terminal already: the same status again is a no-op, whatever the proof says.
    assert.equal((await put(id, { status: 'SUCCEEDED', logLength: 99, logCrc32: 1 })).status, 200);
  });
});
