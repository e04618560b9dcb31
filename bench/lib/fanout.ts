// One load driver for buildlog and Nchan alike: producers publish numbered, time-stamped lines to N logs
// (channels), followers hold one streaming response each and measure when every line arrives.
import { Agent, request, type IncomingMessage } from 'node:http';
import { TOKEN, sleep } from './procs.js';

/** How a load driver talks to one side. */
export interface Target {
  name: string;
  createLogs(url: string, n: number): Promise<string[]>;
  /** Path and headers of one publish of `body` to `log`. */
  publish(log: string): { path: string; headers: Record<string, string> };
  /** Path of a streaming read of `log`; `i` picks the view (buildlog alternates raw and stripped). */
  followPath(log: string, i: number): string;
}

export function buildlogTarget(): Target {
  return {
    name: 'buildlog',
    createLogs: createBuildlogJobs,
    publish: (log) => ({ path: `/v2/logs/${log}/chunks`, headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' } }),
    followPath: (log, i) => `/v2/logs/${log}?stream=1${i % 2 ? '&raw=1' : ''}`,
  };
}

/** Nchan's publisher and http-raw-stream subscriber locations, for startNginx(…, { nchan: true }). */
export const NCHAN_HTTP = `
  nchan_shared_memory_size 512m;
  server {
    listen 127.0.0.1:{{port}} backlog=4096;
    location ~ ^/pub/(\\w+)$ { nchan_publisher; nchan_channel_id $1; nchan_message_buffer_length 20; nchan_message_timeout 30s; }
    location ~ ^/sub/(\\w+)$ { nchan_subscriber http-raw-stream; nchan_channel_id $1; nchan_subscriber_first_message newest; }
  }`;

export function nchanTarget(): Target {
  let n = 0;
  return {
    name: 'nginx+Nchan',
    createLogs: async (_url, count) => Array.from({ length: count }, () => `chan${++n}`),
    publish: (log) => ({ path: `/pub/${log}`, headers: { 'content-type': 'text/plain' } }),
    followPath: (log) => `/sub/${log}`,
  };
}

function call(url: string, agent: Agent, method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Running builds (their logs stay open for appends and followers). */
async function createBuildlogJobs(url: string, n: number): Promise<string[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 10 });
  const ids = await Promise.all(
    Array.from({ length: n }, async () => {
      const res = await call(url, agent, 'POST', '/v2/actor-builds', { authorization: `Bearer ${TOKEN}` });
      if (res.status !== 201) throw new Error(`create: ${res.status} ${res.text}`);
      return (JSON.parse(res.text) as { data: { id: string } }).data.id;
    }),
  );
  agent.destroy();
  return ids;
}

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = Float64Array.from(xs).sort();
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** A follower: counts the distinct lines of its log that arrived and their delivery latency. */
interface Follower {
  res?: IncomingMessage;
  seen: Set<number>;
}

export interface Followers {
  /** Seconds from the first request until every follower had its response head. */
  connectSecs: number;
  failed: number;
  /** Why followers failed: error codes or HTTP statuses, with counts. */
  reasons: Map<string, number>;
  latencies: number[];
  list: Follower[];
  /** Forgets the lines seen so far and their latencies (after a warm-up). */
  reset(): void;
  close(): void;
}

/**
 * Opens `perLog` streaming reads of each log, all at once (as a crowd arriving does), and resolves once
 * every one has its head (follower i reads from `url[i % n]` when several nodes are given). Each line is `<log> <seq> <sent ms> <padding>`; its latency is measured
 * against this process's clock, which also stamped it. The sockets are not bound to a local address
 * before they connect: a bind picks its port without the destination, and with thousands of ports in
 * TIME_WAIT from an earlier row it takes the kernel so long that the driver, not the server, set the
 * connect time (7 to 37 s for the same 10,000 against 2.3 s).
 */
export async function openFollowers(url: string | string[], target: Target, logs: string[], perLog: number): Promise<Followers> {
  const urls = Array.isArray(url) ? url : [url];
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
  const latencies: number[] = [];
  const list: Follower[] = [];
  let failed = 0;
  const reasons = new Map<string, number>();
  const fail = (why: string) => {
    failed++;
    reasons.set(why, (reasons.get(why) ?? 0) + 1);
  };
  const t0 = performance.now();
  const heads: Promise<void>[] = [];
  let i = 0;
  for (const log of logs) {
    for (let k = 0; k < perLog; k++, i++) {
      const f: Follower = { seen: new Set() };
      list.push(f);
      heads.push(
        new Promise<void>((resolve) => {
          const req = request(urls[i % urls.length]! + target.followPath(log, i), { agent }, (res) => {
            f.res = res;
            if (res.statusCode !== 200) fail(`HTTP ${res.statusCode}`);
            let partial = '';
            res.setEncoding('latin1');
            res.on('data', (chunk: string) => {
              const now = performance.now();
              const lines = (partial + chunk).split('\n');
              partial = lines.pop()!;
              for (const line of lines) {
                if (!line) continue;
                const [, seq, sent] = line.split(' ');
                const n = Number(seq);
                if (f.seen.has(n)) continue;
                f.seen.add(n);
                latencies.push(now - Number(sent));
              }
            });
            res.on('error', () => undefined);
            resolve();
          });
          req.on('error', (err: NodeJS.ErrnoException) => {
            fail(err.code ?? err.message);
            resolve();
          });
          req.end();
        }),
      );
    }
  }
  await Promise.all(heads);
  const connectSecs = (performance.now() - t0) / 1000;
  return {
    connectSecs,
    failed,
    reasons,
    latencies,
    list,
    reset() {
      latencies.length = 0;
      for (const f of list) f.seen.clear();
    },
    close() {
      for (const f of list) f.res?.destroy();
      agent.destroy();
    },
  };
}

export interface PublishStats {
  sent: number;
  errors: number;
  /** Milliseconds from sending a publish to its acknowledgement. */
  ackLatencies: number[];
}

/**
 * Publishes `rate` lines per second to every log for `secs` seconds, each log its own sequential
 * producer (one request in flight, keep-alive), ticks spread evenly over the logs. With several nodes,
 * log i is written through `url[(i + 1) % n]`, so that its followers on node i % n get it through the bus.
 */
export async function publishLines(url: string | string[], target: Target, logs: string[], rate: number, secs: number, lineBytes = 100): Promise<PublishStats> {
  const urls = Array.isArray(url) ? url : [url];
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
  const stats: PublishStats = { sent: 0, errors: 0, ackLatencies: [] };
  const count = Math.round(rate * secs);
  const interval = 1000 / rate;
  const start = performance.now() + 20;
  await Promise.all(
    logs.map(async (log, li) => {
      const offset = (interval * li) / logs.length;
      for (let seq = 0; seq < count; seq++) {
        const due = start + offset + seq * interval;
        const wait = due - performance.now();
        if (wait > 1) await sleep(wait);
        const sent = performance.now();
        const head = `${li} ${seq} ${sent.toFixed(3)} `;
        const body = Buffer.from(head.padEnd(lineBytes - 1, 'x') + '\n');
        const { path, headers } = target.publish(log);
        try {
          const res = await call(urls[(li + 1) % urls.length]!, agent, 'POST', path, headers, body);
          if (res.status >= 300) stats.errors++;
          else stats.ackLatencies.push(performance.now() - sent);
        } catch {
          stats.errors++;
        }
        stats.sent++;
      }
    }),
  );
  agent.destroy();
  return stats;
}

/** Waits until every follower has `expected` lines or `timeoutMs` passes; returns the lines missing. */
export async function awaitDelivery(followers: Followers, expected: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  const missing = () => followers.list.reduce((sum, f) => sum + Math.max(0, expected - f.seen.size), 0);
  while (missing() > 0 && Date.now() < deadline) await sleep(50);
  return missing();
}
