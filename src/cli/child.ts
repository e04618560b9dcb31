import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';

export interface CommandOutcome {
  /** The exit code, or null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The command could not be started (ENOENT, EACCES). */
  spawnError?: NodeJS.ErrnoException;
}

/** The exit status a shell reports: the code, 128 + signal number, 127 not found, 126 not executable. */
export function shellExitCode(outcome: CommandOutcome): number {
  if (outcome.spawnError) return outcome.spawnError.code === 'ENOENT' ? 127 : 126;
  if (outcome.code !== null) return outcome.code;
  return 128 + (outcome.signal ? (constants.signals[outcome.signal] ?? 0) : 0);
}

export interface RunningCommand {
  readonly child: ChildProcess;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** Resolves once the command exited and its output was read to the end. */
  readonly done: Promise<CommandOutcome>;
  /** Sends `signal` to the command (and, when it has its own process group, to everything it started). */
  signal(signal: NodeJS.Signals): void;
  /** `signal` now, SIGKILL after `graceMs` if it is still running; stops waiting for output soon after. */
  stop(signal: NodeJS.Signals, graceMs: number): void;
}

/** How long output may still come after a stopped command exited (a grandchild may hold the pipe). */
const OUTPUT_GRACE_MS = 2000;

/**
 * Starts `command args` with stdin inherited and stdout/stderr piped to us. Without a terminal on stdin
 * (CI, scripts) it gets its own process group, so that stopping it also stops what it started (as
 * `timeout(1)` does); with one it stays in ours, so it can still read the terminal and a Ctrl-C there
 * reaches it directly.
 */
export function startCommand(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): RunningCommand {
  const group = !process.stdin.isTTY && process.platform !== 'win32';
  const child = spawn(command, args, { env, stdio: ['inherit', 'pipe', 'pipe'], detached: group });
  let exited = false;
  let stopping = false;
  let killTimer: NodeJS.Timeout | null = null;
  let cutOff = false;

  const signal = (sig: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      if (group) process.kill(-child.pid, sig);
      else if (!exited) child.kill(sig);
    } catch {
      // Already gone.
    }
  };

  /** After a stopped command exited: what it started may still hold the pipes open; do not wait long. */
  const cutOffOutput = () => {
    if (cutOff) return;
    cutOff = true;
    signal('SIGKILL');
    setTimeout(() => {
      child.stdout?.destroy();
      child.stderr?.destroy();
    }, OUTPUT_GRACE_MS).unref();
  };

  const done = new Promise<CommandOutcome>((resolve) => {
    let outcome: CommandOutcome | null = null;
    const finish = () => {
      if (killTimer) clearTimeout(killTimer);
      resolve(outcome!);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return; // errors of a started child also end in 'exit'
      outcome = { code: null, signal: null, spawnError: err };
      finish();
    });
    child.once('exit', (code, sig) => {
      exited = true;
      outcome = { code, signal: sig };
      if (stopping) cutOffOutput();
    });
    child.once('close', () => finish());
  });

  return {
    child,
    stdout: child.stdout!,
    stderr: child.stderr!,
    done,
    signal,
    stop(sig, graceMs) {
      stopping = true;
      signal(sig);
      if (exited) return cutOffOutput();
      if (!killTimer) {
        killTimer = setTimeout(() => signal('SIGKILL'), graceMs);
        killTimer.unref();
      }
    },
  };
}
