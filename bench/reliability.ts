// Two figures the README's Reliability section states, measured rather than bound in a test:
//
//   npm run build && node --expose-gc --import tsx bench/reliability.ts shutdown [runs, default 5]
//   node --expose-gc --import tsx bench/reliability.ts stalled
//
// shutdown: a real `buildlog serve` (dist/) with 20 live followers reading, one follower that stopped
//   reading while 32 MiB went past it (its socket buffers full), and an append under way; the time from
//   SIGTERM to the process's exit, and whether it exited by itself (not the bench's SIGKILL after 15 s).
// stalled: 200 MiB appended in 1 MiB appends to a running log, in an in-process server (so its memory
//   is this process's: heap + external + array buffers after a full collection, as
//   test/reliability-readers.test.ts samples it); once with a follower that reads everything and one
//   that stopped reading, once with the reading follower alone (the peer: what the appends cost anyway).
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { TOKEN, sleep, startBuildlog } from './lib/procs.js';
import { createJob, startTestServer } from '../test/helpers/server.js';

const MIB = 1024 * 1024;
const [part, runsArg] = process.argv.slice(2);

function post(url: string, path: string, body: Buffer, agent: Agent, token = TOKEN): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A follower that sends its request and never reads: the server's socket buffers fill up behind it. */
function stalledFollower(url: string, path: string): Socket {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.host}\r\n\r\n`);
  socket.pause();
  return socket;
}

/** A follower that reads everything; resolves once its response head is in. */
function readingFollower(url: string, path: string): Promise<{ received: () => number; state: () => string; close: () => void }> {
  return new Promise((resolve, reject) => {
    let received = 0;
    // How the response stands, for the message when a follower falls short.
    let state = 'open';
    const req = request(`${url}${path}`, { agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`follower: HTTP ${res.statusCode}`));
      res.on('data', (c: Buffer) => (received += c.length));
      res.on('error', (err) => (state = `failed: ${err.message}`));
      res.on('end', () => (state = 'ended'));
      resolve({ received: () => received, state: () => state, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Until the server counts `n` live followers (its metrics): every follower's request has been taken. */
async function following(url: string, n: number): Promise<void> {
  const count = async () => Number(/^buildlog_live_followers (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  await until(async () => (await count()) === n, `${n} live followers`);
}

async function shutdownRun(): Promise<{ secs: number; forced: boolean }> {
  // The 32 MiB stay in the retention window (5,000,000 characters by default): a reading follower that falls
  // more than the window behind for a moment (a loaded machine) would otherwise rightly be cut off, as the
  // README says, and never get everything.
  const server = await startBuildlog(['--retention-chars', String(64 * MIB)], []);
  const agent = new Agent({ keepAlive: true });
  const created = await fetch(`${server.url}/v2/actor-builds`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{}' });
  const id = ((await created.json()) as { data: { id: string } }).data.id;
  const path = `/v2/logs/${id}?stream=1&raw=1`;
  const stalled = stalledFollower(server.url, path);
  const readers = await Promise.all(Array.from({ length: 20 }, () => readingFollower(server.url, path)));
  await following(server.url, 21);
  const block = Buffer.alloc(4 * MIB, 'stalled reader bench line\n');
  for (let i = 0; i < 8; i++) if ((await post(server.url, `/v2/logs/${id}/chunks`, block, agent)) !== 200) throw new Error('append refused');
  const all = 8 * block.length;
  await until(() => readers.every((r) => r.received() >= all), 'the reading followers to get everything').catch((err: Error) => {
    const short = readers.filter((r) => r.received() < all).map((r) => `${r.received()} of ${all} bytes (${r.state()})`);
    throw new Error(`${err.message}: ${short.join(', ')}`);
  });
  // An append under way when the signal comes: the server has read its head (it answered 100-continue) and half its body.
  let acknowledged: (status: number) => void;
  const answered = new Promise<number>((r) => (acknowledged = r));
  const append = request(`${server.url}/v2/logs/${id}/chunks`, {
    method: 'POST',
    agent,
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream', 'content-length': block.length, expect: '100-continue' },
  }, (res) => (res.resume(), acknowledged(res.statusCode ?? 0)));
  append.on('error', () => acknowledged(0));
  await new Promise<void>((r) => append.once('continue', () => append.write(block.subarray(0, block.length / 2), () => r())));
  const stopping = server.stop();
  append.end(block.subarray(block.length / 2));
  const [stopped, status] = await Promise.all([stopping, answered]);
  if (status !== 200) throw new Error(`the append under way got ${status}, not 200`);
  stalled.destroy();
  for (const r of readers) r.close();
  agent.destroy();
  return stopped;
}

async function shutdown(runs: number): Promise<void> {
  const results: { secs: number; forced: boolean }[] = [];
  for (let i = 0; i < runs; i++) results.push(await shutdownRun());
  const secs = results.map((r) => r.secs).sort((a, b) => a - b);
  console.log(`shutdown: SIGTERM to exit with 20 live followers, a stalled one and an append under way, ${runs} runs: ` +
    `median ${secs[runs >> 1]!.toFixed(2)} s, min ${secs[0]!.toFixed(2)} s, max ${secs.at(-1)!.toFixed(2)} s, ` +
    `exited by itself ${results.filter((r) => !r.forced).length}/${runs}`);
}

const gc = globalThis.gc as (() => void) | undefined;
const usage = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external + m.arrayBuffers;
};
async function liveMemory(): Promise<number> {
  gc!();
  await sleep(10);
  gc!();
  return usage();
}

/** Peak live-memory growth of the in-process server while 200 MiB are appended, with or without a stalled follower. */
async function growth(withStalled: boolean): Promise<number> {
  const server = await startTestServer({ retentionChars: 300 * MIB, rateLimitPerResource: 1_000_000 });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const id = await createJob(server);
    const path = `/v2/logs/${id}?stream=1&raw=1`;
    const stalled = withStalled ? stalledFollower(server.url, path) : null;
    const reader = await readingFollower(server.url, path);
    await following(server.url, stalled ? 2 : 1);
    const baseline = await liveMemory();
    let peak = 0;
    for (let k = 0; k < 200; k++) {
      const chunk = Buffer.alloc(MIB, `chunk ${String(k).padStart(3, '0')}: the quick brown fox jumps over the lazy dog\n`);
      if ((await post(server.url, `/v2/logs/${id}/chunks`, chunk, agent, server.token)) !== 200) throw new Error('append refused');
      if (k % 25 === 24) peak = Math.max(peak, (await liveMemory()) - baseline);
    }
    await until(() => reader.received() >= 200 * MIB, 'the reading follower to get everything');
    peak = Math.max(peak, (await liveMemory()) - baseline);
    if (stalled && stalled.bytesRead > 16 * MIB) throw new Error(`the stalled follower read ${stalled.bytesRead} bytes`);
    stalled?.destroy();
    reader.close();
    return peak / MIB;
  } finally {
    agent.destroy();
    await server.stop();
  }
}

async function stalled(): Promise<void> {
  if (!gc) throw new Error('run with node --expose-gc');
  const alone = await growth(false);
  const withStalled = await growth(true);
  console.log(`stalled: 200 MiB appended, server memory growth after gc: ${withStalled.toFixed(1)} MB with a stalled follower ` +
    `(and one reading), ${alone.toFixed(1)} MB with the reading follower alone`);
}

if (part === 'shutdown') await shutdown(Number(runsArg ?? 5));
else if (part === 'stalled') await stalled();
else throw new Error('usage: bench/reliability.ts shutdown [runs] | stalled');
