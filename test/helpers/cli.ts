import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/buildlog.js', import.meta.url));

/** How to start `buildlog`: this checkout's `bin/buildlog.js` by default, or an installed copy. */
export interface Launch {
  /** The program and its first arguments, before the buildlog arguments (default: node and this checkout's BIN). */
  command?: string[];
  cwd?: string;
}

function launch(args: string[], env: NodeJS.ProcessEnv, stdio: ('ignore' | 'pipe')[], how: Launch) {
  const [program, ...first] = how.command ?? [process.execPath, BIN];
  return spawn(program!, [...first, ...args], { env: { ...cleanEnv(), ...env }, stdio, cwd: how.cwd });
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `buildlog ARGS` to completion (bounded by `timeoutMs`, after which it is killed and the test fails). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, how: Launch = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = launch(args, env, ['ignore', 'pipe', 'pipe'], how);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    child.stderr!.on('data', (c) => (stderr += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`buildlog ${args.join(' ')} did not finish in ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** The environment without any BUILDLOG_* variable of the developer's shell. */
export function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('BUILDLOG_')));
}

export interface ServerProcess {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `buildlog serve` as a child process on a free port and resolves once it listens. */
export function spawnServer(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000, how: Launch = {}): Promise<ServerProcess> {
  return new Promise((resolve, reject) => {
    const child = launch(['serve', '--port', '0', '--log-level', 'warn', ...args], env, ['ignore', 'pipe', 'pipe'], how);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c) => (stdout += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`server did not start in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
    child.stderr!.on('data', (c) => {
      stderr += c;
      const m = /listening on (http:\/\/\S+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({
          child,
          url: m[1]!,
          stdout: () => stdout,
          stderr: () => stderr,
          stop: async (signal = 'SIGTERM') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      }
    });
  });
}
