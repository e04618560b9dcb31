// Long-running health: many producers and followers against one real server for minutes.
//
//   npm run build && node --import tsx bench/soak.ts [--minutes 10] [--producers 20] [--followers 100]
//     [--interval-ms 50] [--chunk-bytes 1024] [--job-secs 60]
//
// Starts `buildlog serve` (child process, temporary data dir) and, on loopback:
// - N producers, each appending numbered lines to its own job every --interval-ms with X-Log-Offset
//   (retrying a refused or failed chunk at the same offset), finishing the job after --job-secs and
//   starting the next one, so jobs, follower subscriptions and connections keep turning over;
// - M followers spread over the producers, each reading the current job of its producer with
//   `stream=1&raw=1` (resuming with `Range` if a response ends early), then moving to the next job.
// Every 10 s it prints: elapsed, server RSS (/proc/<pid>/status VmRSS), appends/s, bytes/s, p50/p99
// append latency, p50/p99 append→follower delivery latency (send of the append to arrival at a
// follower), open followers. At the end it finishes every job, checks that every follower received
// exactly what was appended to each job it followed (length and SHA-256), and prints a summary with
// whether server memory was flat (the last third of the run against the middle third: peak RSS, and the slope at the end).
// Not part of the test suite. Exit code 0 when every check passed, 1 otherwise.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request, type IncomingMessage } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/buildlog.js', import.meta.url));
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'soak-token-0123456789abcdefghijklmn';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const MINUTES = flag('minutes', 10);
const PRODUCERS = flag('producers', 20);
const FOLLOWERS = flag('followers', 100);
const INTERVAL_MS = flag('interval-ms', 50);
const CHUNK_BYTES = flag('chunk-bytes', 1024);
const JOB_SECS = flag('job-secs', 60);
const REPORT_MS = 10_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function header(): string {
  let commit = 'unknown';
  let dirty = '';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const status = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: ROOT, encoding: 'utf8' });
    if (status.trim()) dirty = ' (working tree has uncommitted changes)';
  } catch {
    // Not a git checkout: the header says so.
  }
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown cpu';
  return [
    `# buildlog soak, ${new Date().toISOString()}`,
    `# commit ${commit}${dirty}`,
    `# machine: nproc ${availableParallelism()}, ${cpu}, node ${process.version}, ${process.platform} ${process.arch}`,
    `# ${MINUTES} min, ${PRODUCERS} producers, ${FOLLOWERS} followers, one ${CHUNK_BYTES}-byte append per producer every ${INTERVAL_MS} ms, a new job per producer every ${JOB_SECS} s`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------- server

interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

function startServer(dataDir: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [BIN, 'serve', '--port', '0', '--data', dataDir, '--log-level', 'warn',
        // The soak measures the server, not its abuse limits: one job sees 20 appends/s plus its followers.
        '--rate-limit-resource', '100000', '--max-streams', '100000'],
      { env: { ...process.env, BUILDLOG_TOKEN: TOKEN }, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.stderr!.on('data', (c) => {
      err += c;
      if (err.length > 100_000) err = err.slice(-50_000);
      const m = /listening on http:\/\/[^:]+:(\d+)/.exec(err);
      if (m) resolve({ child, port: Number(m[1]), exited });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

// ---------------------------------------------------------------------------------------------- stats

class Window {
  appends = 0;
  bytes = 0;
  appendMs: number[] = [];
  deliveryMs: number[] = [];
}

let win = new Window();
const allAppendMs: number[] = [];
const allDeliveryMs: number[] = [];
let openFollowers = 0;
let appendErrors = 0;
/** Why attempts failed (status or error code), for the summary. */
const errorReasons = new Map<string, number>();
function failed(reason: string): void {
  appendErrors++;
  errorReasons.set(reason, (errorReasons.get(reason) ?? 0) + 1);
}
let totalAppends = 0;
let totalBytes = 0;
let followerReconnects = 0;

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '-');

/** Keeps a bounded sample for the overall percentiles (reservoir of 200k). */
function keep(all: number[], values: number[]): void {
  for (const v of values) {
    if (all.length < 200_000) all.push(v);
    else {
      const i = Math.floor(Math.random() * 400_000);
      if (i < all.length) all[i] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------------- HTTP

const producerAgent = new Agent({ keepAlive: true, maxSockets: PRODUCERS * 2 });

function call(port: number, method: string, path: string, body: Buffer | string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, agent: producerAgent, timeout: 60_000,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-length': String(Buffer.byteLength(body)), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------- producers

interface JobState {
  id: string;
  /** Acknowledged bytes so far. */
  length: number;
  hash: Hash;
  /** End offset of each acknowledged append and when it was sent, for delivery latency. */
  ends: { end: number; sentAt: number }[];
  final: Promise<{ length: number; digest: string }>;
  resolveFinal: (v: { length: number; digest: string }) => void;
}

class Producer {
  current: JobState | null = null;
  generation = 0;
  jobs = 0;
  #waiters: (() => void)[] = [];
  stopped = false;

  constructor(readonly index: number, readonly port: number) {}

  /** The job after generation `after`, or null once the producer stopped. */
  async nextJob(after: number): Promise<{ job: JobState; generation: number } | null> {
    while (this.generation <= after || !this.current) {
      if (this.stopped) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    return { job: this.current, generation: this.generation };
  }

  #wake(): void {
    for (const w of this.#waiters.splice(0)) w();
  }

  async run(deadline: number): Promise<void> {
    let line = 0;
    while (Date.now() < deadline) {
      const created = await this.#retry(() => call(this.port, 'POST', '/v2/actor-builds', '{}', { 'content-type': 'application/json' }), 201);
      const id = (JSON.parse(created) as { data: { id: string } }).data.id;
      let resolveFinal!: JobState['resolveFinal'];
      const final = new Promise<{ length: number; digest: string }>((r) => (resolveFinal = r));
      const job: JobState = { id, length: 0, hash: createHash('sha256'), ends: [], final, resolveFinal };
      this.current = job;
      this.generation++;
      this.jobs++;
      this.#wake();
      const jobDeadline = Math.min(deadline, Date.now() + JOB_SECS * 1000);
      let next = Date.now();
      while (Date.now() < jobDeadline) {
        let text = '';
        while (text.length < CHUNK_BYTES) {
          text += `producer ${String(this.index).padStart(3, '0')} line ${String(++line).padStart(9, '0')} ${'x'.repeat(40)}\n`;
        }
        const chunk = Buffer.from(text.slice(0, CHUNK_BYTES));
        for (;;) {
          const sentAt = performance.now();
          try {
            const res = await call(this.port, 'POST', `/v2/logs/${id}/chunks`, chunk, {
              'content-type': 'application/octet-stream',
              'x-log-offset': String(job.length),
            });
            if (res.status === 200) {
              const ms = performance.now() - sentAt;
              win.appends++;
              win.bytes += chunk.length;
              totalAppends++;
              totalBytes += chunk.length;
              win.appendMs.push(ms);
              job.length += chunk.length;
              job.hash.update(chunk);
              job.ends.push({ end: job.length, sentAt });
              break;
            }
            failed(`append: HTTP ${res.status}`);
            if (res.status === 400) throw new Error(`append refused: ${res.body}`);
          } catch (err) {
            if ((err as Error).message.startsWith('append refused')) throw err;
            failed(`append: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
          }
          await sleep(100);
        }
        next += INTERVAL_MS;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
        else next = Date.now();
      }
      await this.#retry(() => call(this.port, 'PUT', `/v2/actor-builds/${id}`, '{"status":"SUCCEEDED"}', { 'content-type': 'application/json' }), 200);
      job.resolveFinal({ length: job.length, digest: job.hash.digest('hex') });
    }
    this.stopped = true;
    this.#wake();
  }

  async #retry(attempt: () => Promise<{ status: number; body: string }>, ok: number): Promise<string> {
    for (let i = 0; ; i++) {
      try {
        const res = await attempt();
        if (res.status === ok) return res.body;
        failed(`create/finish: HTTP ${res.status}`);
        if (i > 50) throw new Error(`status ${res.status}: ${res.body}`);
      } catch (err) {
        failed(`create/finish: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        if (i > 50) throw err;
      }
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------------------------------------- followers

interface Check {
  follower: number;
  job: string;
  ok: boolean;
  detail: string;
}
const checks: Check[] = [];

class Follower {
  constructor(readonly index: number, readonly producer: Producer, readonly port: number) {}

  async run(): Promise<void> {
    let generation = 0;
    for (;;) {
      const next = await this.producer.nextJob(generation);
      if (!next) return;
      generation = next.generation;
      await this.#follow(next.job);
    }
  }

  async #follow(job: JobState): Promise<void> {
    const hash = createHash('sha256');
    let received = 0;
    let cursor = 0;
    const since = performance.now();
    for (let attempt = 0; ; attempt++) {
      const endedCleanly = await new Promise<boolean>((resolve) => {
        const req = request(
          { host: '127.0.0.1', port: this.port, path: `/v2/logs/${job.id}?stream=1&raw=1`, agent: false,
            headers: received > 0 ? { range: `bytes=${received}-` } : {} },
          (res: IncomingMessage) => {
            if (res.statusCode !== 200 && res.statusCode !== 206) {
              res.resume();
              return resolve(false);
            }
            openFollowers++;
            let open = true;
            const close = (clean: boolean) => {
              if (open) openFollowers--;
              open = false;
              resolve(clean);
            };
            res.on('data', (c: Buffer) => {
              const now = performance.now();
              received += c.length;
              hash.update(c);
              const samples: number[] = [];
              while (cursor < job.ends.length && job.ends[cursor]!.end <= received) {
                const { sentAt } = job.ends[cursor++]!;
                // Appends sent before this follower connected measure its catch-up, not delivery.
                if (sentAt >= since) samples.push(now - sentAt);
              }
              for (const s of samples) win.deliveryMs.push(s);
            });
            res.on('end', () => close(true));
            res.on('error', () => close(false));
            res.on('aborted', () => close(false));
          },
        );
        req.on('error', () => resolve(false));
        req.end();
      });
      const final = await Promise.race([job.final, sleep(endedCleanly ? 30_000 : 0).then(() => null)]);
      if (final && received >= final.length) {
        const digest = hash.digest('hex');
        const ok = received === final.length && digest === final.digest;
        checks.push({ follower: this.index, job: job.id, ok, detail: `${received}/${final.length} bytes${ok ? '' : ', content differs'}` });
        return;
      }
      // The response ended before the job did (or failed): resume where it stopped.
      followerReconnects++;
      if (attempt > 100) {
        checks.push({ follower: this.index, job: job.id, ok: false, detail: `gave up after ${attempt} reconnects at ${received} bytes` });
        return;
      }
      await sleep(200);
    }
  }
}

// ---------------------------------------------------------------------------------------------- main

async function main(): Promise<number> {
  console.log(header());
  const dataDir = mkdtempSync(join(tmpdir(), 'buildlog-soak-'));
  const server = await startServer(dataDir);
  const pid = server.child.pid!;
  const started = Date.now();
  const deadline = started + MINUTES * 60_000;
  const producers = Array.from({ length: PRODUCERS }, (_, i) => new Producer(i, server.port));
  const followers = Array.from({ length: FOLLOWERS }, (_, i) => new Follower(i, producers[i % PRODUCERS]!, server.port));
  const rss: { t: number; mib: number }[] = [{ t: 0, mib: rssMiB(pid) }];

  console.log(`server pid ${pid}, port ${server.port}, RSS at start ${fmt(rss[0]!.mib)} MiB`);
  console.log('elapsed_s  rss_MiB  appends/s  KiB/s    append_p50_ms  append_p99_ms  deliver_p50_ms  deliver_p99_ms  open_followers');
  const report = setInterval(() => {
    const w = win;
    win = new Window();
    const secs = REPORT_MS / 1000;
    const a = w.appendMs.sort((x, y) => x - y);
    const d = w.deliveryMs.sort((x, y) => x - y);
    keep(allAppendMs, a);
    keep(allDeliveryMs, d);
    const t = (Date.now() - started) / 1000;
    const mib = rssMiB(pid);
    rss.push({ t, mib });
    console.log(
      [fmt(t, 0).padStart(9), fmt(mib).padStart(7), fmt(w.appends / secs).padStart(9), fmt(w.bytes / 1024 / secs).padStart(8),
        fmt(pct(a, 50), 2).padStart(13), fmt(pct(a, 99), 2).padStart(14), fmt(pct(d, 50), 2).padStart(15),
        fmt(pct(d, 99), 2).padStart(15), String(openFollowers).padStart(15)].join('  '),
    );
  }, REPORT_MS);

  const followersDone = Promise.all(followers.map((f) => f.run()));
  await Promise.all(producers.map((p) => p.run(deadline)));
  // Every job is finished now; each follower's response ends after the last byte.
  const drained = await Promise.race([followersDone.then(() => true), sleep(120_000).then(() => false)]);
  clearInterval(report);

  const t = (Date.now() - started) / 1000;
  const endRss = rssMiB(pid);
  server.child.kill('SIGTERM');
  const exitCode = await Promise.race([server.exited, sleep(15_000).then(() => 'timeout' as const)]);
  if (exitCode === 'timeout') server.child.kill('SIGKILL');
  producerAgent.destroy();
  rmSync(dataDir, { recursive: true, force: true });

  const inThird = (from: number, to: number) => rss.filter((r) => r.t > (t * from) / 3 && r.t <= (t * to) / 3).map((r) => r.mib);
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
  const middle = inThird(1, 2);
  const last = inThird(2, 3);
  // Least-squares slope of RSS over the last third, in MiB per minute: is it still growing at the end?
  const tail = rss.filter((r) => r.t > (t * 2) / 3);
  const mt = tail.reduce((s, r) => s + r.t, 0) / Math.max(1, tail.length);
  const mr = tail.reduce((s, r) => s + r.mib, 0) / Math.max(1, tail.length);
  const slope = (tail.reduce((s, r) => s + (r.t - mt) * (r.mib - mr), 0) / Math.max(1e-9, tail.reduce((s, r) => s + (r.t - mt) ** 2, 0))) * 60;
  // Flat: the last third's peak is within 5% (at least 5 MiB) of the middle third's, and RSS is not still
  // rising at the end. Peaks rather than means: V8 grows its heap in steps and keeps it, so one step in
  // the middle third moves the means without anything leaking; a leak raises every later peak.
  const peakMiddle = Math.max(...middle);
  const peakLast = Math.max(...last);
  const flat = peakLast <= Math.max(peakMiddle * 1.05, peakMiddle + 5) && slope < 1;
  const failed = checks.filter((c) => !c.ok);
  const expectedChecks = producers.reduce((s, p) => s + p.jobs, 0) * (FOLLOWERS / PRODUCERS);
  allAppendMs.sort((x, y) => x - y);
  allDeliveryMs.sort((x, y) => x - y);

  console.log('');
  console.log('# summary');
  console.log(`duration                 ${fmt(t, 0)} s`);
  console.log(`jobs                     ${producers.reduce((s, p) => s + p.jobs, 0)} (${PRODUCERS} producers)`);
  const reasons = [...errorReasons].map(([r, n]) => `${r} x${n}`).join(', ');
  console.log(`appends                  ${totalAppends} (${fmt(totalBytes / 1024 / 1024)} MiB, ${fmt(totalAppends / t, 0)}/s); refused or failed attempts (retried) ${appendErrors}${reasons ? ` (${reasons})` : ''}`);
  console.log(`append latency           p50 ${fmt(pct(allAppendMs, 50), 2)} ms, p99 ${fmt(pct(allAppendMs, 99), 2)} ms, max ${fmt(allAppendMs.at(-1) ?? NaN, 2)} ms`);
  console.log(`delivery latency         p50 ${fmt(pct(allDeliveryMs, 50), 2)} ms, p99 ${fmt(pct(allDeliveryMs, 99), 2)} ms, max ${fmt(allDeliveryMs.at(-1) ?? NaN, 2)} ms`);
  console.log(`follower reconnects      ${followerReconnects}`);
  console.log(`follower checks          ${checks.length - failed.length}/${checks.length} exact (expected ${expectedChecks})${drained ? '' : '; some followers never finished'}`);
  for (const f of failed.slice(0, 20)) console.log(`  FAILED follower ${f.follower} job ${f.job}: ${f.detail}`);
  console.log(`server RSS               start ${fmt(rss[0]!.mib)} MiB, max ${fmt(Math.max(...rss.map((r) => r.mib)))} MiB, end ${fmt(endRss)} MiB`);
  console.log(`RSS middle third         mean ${fmt(mean(middle))} MiB, peak ${fmt(peakMiddle)} MiB`);
  console.log(`RSS last third           mean ${fmt(mean(last))} MiB, peak ${fmt(peakLast)} MiB, slope ${fmt(slope, 2)} MiB/min`);
  console.log(`memory                   ${flat ? 'FLAT' : 'GROWING'} (last third's peak within 5% or 5 MiB of the middle third's, slope under 1 MiB/min)`);
  console.log(`server exit on SIGTERM   ${exitCode}`);
  const ok = failed.length === 0 && drained && checks.length === expectedChecks && flat && exitCode === 0;
  console.log(`result                   ${ok ? 'PASS' : 'FAIL'}`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
