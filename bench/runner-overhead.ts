// How much slower is a command with heavy output when wrapped by `buildlog run`?
//
//   npm run build && node --import tsx bench/runner-overhead.ts [MiB, default 100] [runs, default 3]
//
// Starts a real `buildlog serve` on a temporary data dir, then times a command that prints ~100 MB of
// lines: bare (stdout to /dev/null), bare into a pipe that is read, and wrapped by `buildlog run`
// (with and without timestamps; the wrapper's own stdout to /dev/null), wrapped with 20 secrets in the
// environment to mask (what masking costs), and wrapped against a stand-in server that discards what it
// gets (the runner's own cost). Each run starts once the server is idle. Prints the medians and ratios,
// and the CPU time of the command and the wrapper together (children's CPU from /proc, Linux). The
// wrapped time includes delivering every byte to the server and setting the final status.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/buildlog.js', import.meta.url));
const MIB = Number(process.argv[2] ?? 100);
const RUNS = Number(process.argv[3] ?? 3);
const TOKEN = 'bench-token-0123456789abcdefghijklmn';
/** 20 secrets of 16 to 40 characters, as API tokens and passwords are, in variables `buildlog run` masks by name. */
const SECRETS = Object.fromEntries(
  Array.from({ length: 20 }, (_, i) => [`BENCH_SECRET_${i}`, randomBytes(30).toString('base64url').slice(0, 16 + Math.floor((i * 24) / 19))]),
);

// ~100-byte numbered lines written in 64 KiB blocks, as a chatty build tool would. At exit it reports
// its own run time on stderr, so that the bench can tell "the command was slowed down" from "the
// wrapper needed time after it to deliver the log".
const GENERATOR = `
  process.on('exit', () => process.stderr.write('generator-secs=' + (performance.now() / 1000).toFixed(3) + '\\n'));
  const total = ${MIB} * 1024 * 1024;
  const pad = 'lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor';
  let n = 0, written = 0;
  function block() {
    let s = '';
    while (s.length < 65536) s += 'line ' + String(++n).padStart(8, '0') + ' ' + pad + '\\n';
    return s;
  }
  (function pump() {
    while (written < total) {
      const b = block();
      written += b.length;
      if (!process.stdout.write(b)) return process.stdout.once('drain', pump);
    }
  })();`;

function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', '--data', dataDir, '--log-level', 'warn'], {
      env: { ...process.env, BUILDLOG_TOKEN: TOKEN },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (c) => {
      err += c;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
  });
}

/**
 * A stand-in server that acknowledges everything and stores nothing (in this process): wrapped against
 * it, the time is the runner's own overhead, without the real server's ingest cost.
 */
async function startDiscardingServer(): Promise<{ url: string; close(): void }> {
  let length = 0;
  const server = createHttpServer((req, res) => {
    const isAppend = req.url!.includes('/chunks');
    req.on('data', (c: Buffer) => {
      if (isAppend) length += c.length;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url!.includes('waitForFinish')) return; // held until the runner lets go
      if (req.method === 'POST' && !isAppend) res.statusCode = 201;
      res.end(JSON.stringify({ data: { id: 'DiscardDiscard123', status: req.method === 'PUT' ? 'SUCCEEDED' : 'RUNNING', length } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/**
 * CPU seconds (user + system) of this process's children that ended and were waited for: around one
 * timed run, what the command and the wrapper spent. Less at the mercy of other load on the machine than
 * wall time. NaN where /proc is missing.
 */
function childrenCpuSecs(): number {
  try {
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100; // cutime + cstime, in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** Runs `argv`, stdout to /dev/null (or to a pipe that is drained), and resolves with the seconds it took. */
function time(argv: string[], opts: { env?: NodeJS.ProcessEnv; pipe?: boolean } = {}): Promise<{ secs: number; cpu: number; stderr: string }> {
  const devnull = openSync('/dev/null', 'w');
  const cpuBefore = childrenCpuSecs();
  const started = process.hrtime.bigint();
  const child = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', opts.pipe ? 'pipe' : devnull, 'pipe'],
  });
  if (opts.pipe) child.stdout!.resume();
  let stderr = '';
  child.stderr!.on('data', (c) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      const secs = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${argv.join(' ')} exited with ${code}: ${stderr}`));
      else resolve({ secs, cpu: childrenCpuSecs() - cpuBefore, stderr });
    });
  });
}

/**
 * Waits until the server has been idle for a while (its CPU time, from /proc, unchanged for 1.5 s): after a
 * wrapped run it packs and indexes the finished log, about 0.2 s of CPU starting ~1 s later, which would
 * otherwise land on whichever variant runs next (always the same one, in this fixed order).
 */
async function settle(pid: number): Promise<void> {
  const cpuTicks = () => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return Number(fields[11]) + Number(fields[12]); // utime + stime
    } catch {
      return null; // not Linux: do not wait
    }
  };
  const deadline = Date.now() + 15_000;
  let last = cpuTicks();
  let quietSince = Date.now();
  while (last !== null && Date.now() - quietSince < 1500 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = cpuTicks();
    if (now !== last) quietSince = Date.now();
    last = now;
  }
}

const generatorSecs = (stderr: string) => Number(/generator-secs=([\d.]+)/.exec(stderr)?.[1] ?? NaN);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function logLength(url: string, id: string): Promise<number> {
  const res = await fetch(`${url}/v2/logs/${id}?raw=1`, { headers: { range: 'bytes=-1' } });
  await res.arrayBuffer();
  return Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
}

async function main() {
  const dataDir = mkdtempSync(join(tmpdir(), 'buildlog-bench-'));
  const server = await startServer(dataDir);
  const env = { BUILDLOG_URL: server.url, BUILDLOG_TOKEN: TOKEN };
  const command = [process.execPath, '-e', GENERATOR];
  const discarding = await startDiscardingServer();
  const variants = ['bare', 'bare | pipe', 'buildlog run', 'buildlog run, 20 masked values', 'buildlog run --no-timestamps', 'buildlog run, discarding server'];
  const results: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
  /** The command's own run time (process start to exit), per variant. */
  const own: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
  /** CPU seconds of the command and the wrapper together, per variant. */
  const cpu: Record<string, number[]> = Object.fromEntries(variants.map((v) => [v, []]));
  const stored: Record<string, number> = {};
  try {
    console.log(`${MIB} MiB of ~100-byte lines, ${RUNS} runs each (medians), node ${process.version}, ${cpus().length} CPUs`);
    for (let r = 0; r < RUNS; r++) {
      for (const [name, pipe] of [
        ['bare', false],
        ['bare | pipe', true],
      ] as const) {
        await settle(server.child.pid!);
        const { secs, cpu: cpuSecs, stderr } = await time(command, { pipe });
        results[name]!.push(secs);
        cpu[name]!.push(cpuSecs);
        own[name]!.push(generatorSecs(stderr));
      }
      for (const [name, extra, url, secrets] of [
        ['buildlog run', [], server.url, {}],
        ['buildlog run, 20 masked values', [], server.url, SECRETS],
        ['buildlog run --no-timestamps', ['--no-timestamps'], server.url, {}],
        ['buildlog run, discarding server', [], discarding.url, {}],
      ] as const) {
        const runEnv = { ...env, ...secrets, BUILDLOG_URL: url };
        await settle(server.child.pid!);
        const { secs, cpu: cpuSecs, stderr } = await time([process.execPath, BIN, 'run', ...extra, '--', ...command], { env: runEnv });
        cpu[name]!.push(cpuSecs);
        const id = /(?:build) ([A-Za-z0-9]{17}) started/.exec(stderr)?.[1];
        if (!id || !/SUCCEEDED/.test(stderr)) throw new Error(`wrapped run failed: ${stderr}`);
        if (url === server.url) stored[name] = await logLength(server.url, id);
        results[name]!.push(secs);
        own[name]!.push(generatorSecs(stderr));
      }
    }
  } finally {
    discarding.close();
    server.child.kill('SIGTERM');
    rmSync(dataDir, { recursive: true, force: true });
  }
  const bare = median(results.bare!);
  for (const [name, xs] of Object.entries(results)) {
    const m = median(xs);
    const bytes = stored[name] ? `; ${(stored[name]! / 1024 / 1024).toFixed(1)} MiB appended to the log` : '';
    console.log(
      `${name.padEnd(32)} ${m.toFixed(2)} s  ratio ${(m / bare).toFixed(2)}  ` +
        `(runs ${xs.map((x) => x.toFixed(2)).join(' ')}; the command itself ${median(own[name]!).toFixed(2)} s; CPU ${median(cpu[name]!).toFixed(2)} s${bytes})`,
    );
  }
  const masking = median(results['buildlog run, 20 masked values']!) / median(results['buildlog run']!) - 1;
  const maskingCpu = median(cpu['buildlog run, 20 masked values']!) / median(cpu['buildlog run']!) - 1;
  console.log(
    `masking 20 values costs ${(masking * 100).toFixed(1)} % of time over buildlog run, ` +
      `${(maskingCpu * 100).toFixed(1)} % of CPU (command and wrapper; target <= 10 %)`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
