import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { BIN, cleanEnv } from './cli.js';

/** A `buildlog ...` child process under a test's control: its output so far, signals, stdin. */
export interface CliChild {
  child: ChildProcessWithoutNullStreams;
  stdout(): Buffer;
  stderr(): string;
  /** Resolves with the exit code (or 128 + n for a signal) once the process ended and its pipes closed. */
  exited: Promise<number>;
  /** Resolves with `exited`, or kills the child and rejects after `timeoutMs`. */
  wait(timeoutMs?: number): Promise<number>;
}

const running = new Set<ChildProcessWithoutNullStreams>();

/** Starts `node bin/buildlog.js ARGS`; kill leftovers with `killAll()` in `after`. */
export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliChild {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...cleanEnv(), ...env }, stdio: 'pipe' });
  running.add(child);
  const out: Buffer[] = [];
  let err = '';
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => (err += c));
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code, signal) => {
      running.delete(child);
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : 2));
    });
  });
  const handle: CliChild = {
    child,
    stdout: () => Buffer.concat(out),
    stderr: () => err,
    exited,
    wait(timeoutMs = 30_000) {
      let timer: NodeJS.Timeout;
      const expired = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`buildlog ${args.join(' ')} did not exit in ${timeoutMs} ms; stderr:\n${err}`));
        }, timeoutMs);
      });
      return Promise.race([exited, expired]).finally(() => clearTimeout(timer));
    },
  };
  return handle;
}

export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** Resolves once `predicate` holds (polling every 20 ms); rejects after `timeoutMs` with `what`. */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP proxy in front of `target` whose connections a test can cut at any moment. */
export interface CuttableProxy {
  url: string;
  /** Connections accepted so far. */
  connections(): number;
  /** Destroys every open connection (both sides), as a network failure would. */
  cut(): number;
  close(): Promise<void>;
}

export async function startProxy(target: string): Promise<CuttableProxy> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<Socket>();
  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    const upstream = connect(Number(port), hostname);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`,
    connections: () => accepted,
    cut() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A port nothing listens on (bound and released again). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
