// The processes a bench row measures: one `buildlog serve` and one nginx (static files or Nchan), each on
// a free loopback port with a temporary directory, and what /proc says about them (RSS, CPU time).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/buildlog.js', import.meta.url));
export const TOKEN = 'bench-token-0123456789abcdefghijklmn';
/** The limits lifted for benchmarking (issue 9): one load driver is one client to the server. */
export const BENCH_FLAGS = ['--rate-limit-resource', '1000000', '--rate-limit-client', '100000000', '--max-streams', '100000'];

export interface Proc {
  url: string;
  /** The process that serves requests (the nginx worker, not its master). */
  pid: number;
  stop(): Promise<Stopped>;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`process exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** How long a process took from the signal to its exit, and whether it had to be killed (after 15 s). */
export interface Stopped {
  secs: number;
  forced: boolean;
}

function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<Stopped> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ secs: 0, forced: false });
  return new Promise((resolve) => {
    const started = performance.now();
    let forced = false;
    const force = setTimeout(() => ((forced = true), child.kill('SIGKILL')), 15_000);
    child.once('exit', () => (clearTimeout(force), resolve({ secs: (performance.now() - started) / 1000, forced })));
    child.kill(signal);
  });
}

/** Node options for every bench server, to profile a row: BUILDLOG_BENCH_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p'. */
const PROFILE_ARGS = (process.env.BUILDLOG_BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** `buildlog serve` from dist/ (run `npm run build` first) with the bench flags and a fresh data dir. */
export async function startBuildlog(extra: string[] = [], nodeArgs: string[] = []): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'buildlog-bench-'));
  const child = spawn(process.execPath, [...PROFILE_ARGS, ...nodeArgs, BIN, 'serve', '--port', '0', '--data', join(dir, 'data'), '--log-level', 'warn', ...BENCH_FLAGS, ...extra], {
    env: { ...process.env, BUILDLOG_TOKEN: TOKEN },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  // Port 0 and the address it prints: a port picked beforehand could be taken by another process meanwhile.
  const url = await new Promise<string>((resolve, reject) => {
    let err = '';
    const onData = (c: Buffer) => {
      err += c;
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) {
        child.stderr!.off('data', onData);
        child.stderr!.pipe(process.stderr);
        resolve(m[1]!);
      }
    };
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`buildlog serve exited with ${code}: ${err}`)));
  });
  return {
    url,
    pid: child.pid!,
    async stop() {
      const stopped = await stopChild(child);
      rmSync(dir, { recursive: true, force: true });
      return stopped;
    },
  };
}

const NCHAN = '/usr/lib/nginx/modules/ngx_nchan_module.so';

/**
 * nginx with one worker process (buildlog is one Node process), access log off. `http` is the body of
 * the http block; `{{port}}` is replaced by the port and `{{root}}` by a directory the caller may fill.
 */
export async function startNginx(http: string, options: { nchan?: boolean; files?: Record<string, Buffer> } = {}): Promise<Proc> {
  const dir = mkdtempSync(join(tmpdir(), 'buildlog-bench-nginx-'));
  const port = await freePort();
  for (const [name, data] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), data);
  const conf = `${options.nchan ? `load_module ${NCHAN};\n` : ''}worker_processes 1;
worker_rlimit_nofile 20000;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 20000; }
http {
  access_log off;
  client_body_temp_path ${dir};
  ${http.replaceAll('{{port}}', String(port)).replaceAll('{{root}}', dir)}
}
`;
  writeFileSync(join(dir, 'nginx.conf'), conf);
  const child = spawn('nginx', ['-c', join(dir, 'nginx.conf'), '-p', dir, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitForPort(port, child);
  // Something else may have taken the port between picking and binding it: then nginx has exited.
  await sleep(200);
  if (child.exitCode !== null) throw new Error(`nginx exited (port ${port} taken?)`);
  let worker = 0;
  for (let i = 0; i < 100 && !worker; i++) {
    worker = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    if (!worker) await sleep(50);
  }
  if (!worker) throw new Error('nginx started no worker');
  return {
    url: `http://127.0.0.1:${port}`,
    pid: worker,
    async stop() {
      const stopped = await stopChild(child, 'SIGQUIT');
      rmSync(dir, { recursive: true, force: true });
      return stopped;
    },
  };
}

/** Resident set size of a process, in MB. */
export function rssMB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  return kb / 1024;
}

/** CPU seconds (user + system) a process has used so far. */
export function cpuSecs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
