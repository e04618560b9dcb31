import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { ErrorResponse, BuildlogApi, isRetryable, NetworkError, type JobKind, type WireJob } from '../client/api.js';
import { LogAppender } from '../client/appender.js';
import { Backoff, sleep } from '../client/backoff.js';
import { resolveClientConfig, UsageError, type ClientFlags } from '../client/config.js';
import { watchJob } from '../client/job-watch.js';
import type { JobStatus } from '../core/job.js';
import { SecretMasker } from '../text/secret-masker.js';
import { shellExitCode, startCommand, type CommandOutcome } from './child.js';
import { OutputLog } from './output.js';
import { collectSecrets, commandEnv, type MaskFlags } from './secrets.js';

/** Options of `buildlog run` as commander gives them. */
export interface RunFlags extends ClientFlags, MaskFlags {
  kind: JobKind;
  actor?: string;
  buildNumber?: string;
  timeout?: string;
  killAfter: string;
  timestamps: boolean;
  allowOffline?: boolean;
  flushTimeout: string;
  heartbeat: string;
  memoryBuffer: string;
  passToken?: boolean;
}

/** Why the command was stopped before it ended on its own. */
type StopReason = { kind: 'signal'; signal: 'SIGINT' | 'SIGTERM' } | { kind: 'timeout' } | { kind: 'api'; status: JobStatus };

/** Whether the command's echoed stderr ended its last line, so that our messages start on their own line. */
let stderrAtLineStart = true;
const say = (line: string) => {
  process.stderr.write(`${stderrAtLineStart ? '' : '\n'}buildlog: ${line}\n`);
  stderrAtLineStart = true;
};

function seconds(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\s*\d+(\.\d+)?\s*$/.test(value) ? Number(value) : NaN;
  if (!(n >= min)) throw new UsageError(`${name} must be a number of seconds${min > 0 ? ' above 0' : ''}, got "${value}"`);
  return n;
}

/** `buildlog run [options] -- <command> [args...]`: exits with the command's exit code. */
export async function run(command: string, args: string[], flags: RunFlags): Promise<void> {
  let code: number;
  try {
    code = await runWrapped(command, args, flags);
  } catch (err) {
    say(err instanceof Error ? err.message : String(err));
    code = 2;
  }
  process.exit(code);
}

async function runWrapped(command: string, args: string[], flags: RunFlags): Promise<number> {
  const timeoutSecs = seconds('--timeout', flags.timeout, Number.MIN_VALUE);
  const killAfterMs = seconds('--kill-after', flags.killAfter, 0)! * 1000;
  const flushTimeoutMs = seconds('--flush-timeout', flags.flushTimeout, 0)! * 1000;
  const heartbeatMs = seconds('--heartbeat', flags.heartbeat, Number.MIN_VALUE)! * 1000;
  if (!/^\d+$/.test(flags.memoryBuffer) || Number(flags.memoryBuffer) < 1) {
    throw new UsageError(`--memory-buffer must be a number of bytes, got "${flags.memoryBuffer}"`);
  }
  const config = resolveClientConfig(flags);
  if (!config.token) throw new UsageError('an API token is needed to create a build: set BUILDLOG_TOKEN or pass --token');
  const api = new BuildlogApi(config);
  const kind = flags.kind;
  // Before anything is run or sent: what the command prints goes through these first.
  const secrets = collectSecrets(flags, process.env, [config.token], say);

  const job = await createJob(api, kind, flags);
  if (job) {
    say(`${kind} ${job.id} started`);
    say(`  log     ${config.url}/v2/logs/${job.id}`);
    say(`  viewer  ${config.url}/logs/${job.id}`);
  }

  let reason: StopReason | null = null;
  let commandDone = false;
  let apiStatus: JobStatus | null = null;
  const stopWatching = new AbortController();
  const giveUpFlush = new AbortController();

  const appender = job
    ? new LogAppender({
        api,
        kind,
        jobId: job.id,
        memoryLimit: Number(flags.memoryBuffer),
        heartbeatMs,
        onWarning: say,
        onTerminal: (status) => onApiTerminal(status as JobStatus),
      })
    : null;
  const output = new OutputLog((data) => appender?.write(data), { timestamps: flags.timestamps });

  const stop = (why: StopReason, signal: NodeJS.Signals) => {
    if (reason || commandDone) return;
    reason = why;
    cmd.stop(signal, killAfterMs);
  };
  function onApiTerminal(status: JobStatus) {
    if (apiStatus) return;
    apiStatus = status;
    if (!commandDone) say(`the ${kind} was set to ${status} through the API; stopping the command`);
    stop({ kind: 'api', status }, 'SIGTERM');
  }
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (!reason && !commandDone) return stop({ kind: 'signal', signal }, signal);
    // A second Ctrl-C: stop at once, and do not wait for the rest of the log to be delivered.
    if (!commandDone) cmd.signal('SIGKILL');
    giveUpFlush.abort();
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));

  const cmd = startCommand(command, args, commandEnv(process.env, flags.passToken ?? false));
  const flushStdout = relay(cmd.stdout, process.stdout, new SecretMasker(secrets), (chunk) => output.write('stdout', chunk));
  const flushStderr = relay(cmd.stderr, process.stderr, new SecretMasker(secrets), (chunk) => output.write('stderr', chunk));
  const timer = timeoutSecs === undefined ? null : setTimeout(() => stop({ kind: 'timeout' }, 'SIGTERM'), timeoutSecs * 1000);
  if (job) void watchJob(api, kind, job.id, (j) => onApiTerminal(j.status), stopWatching.signal);

  const outcome = await cmd.done;
  commandDone = true;
  flushStdout();
  flushStderr();
  if (timer) clearTimeout(timer);
  stopWatching.abort();
  if (outcome.spawnError) {
    const text = `cannot run "${command}": ${outcome.spawnError.code === 'ENOENT' ? 'command not found' : outcome.spawnError.message}`;
    const masked = secrets.maskAll(Buffer.from(text)).toString();
    say(masked);
    output.write('stderr', Buffer.from(`buildlog: ${masked}\n`));
  }
  output.end();

  const exitCode = runExitCode(reason, outcome);
  if (!job || !appender) return exitCode;

  const final = finalStatus(reason, outcome, timeoutSecs);
  const delivered = await appender.drain(flushTimeoutMs, giveUpFlush.signal);
  appender.close();
  if (delivered === 'timeout') {
    say(`could not deliver the last ${appender.written - appender.acked} bytes of output; the ${kind} stays RUNNING`);
    return exitCode;
  }
  let shown: WireJob | null = null;
  // The status is final: set it only once the log is complete (unless appending failed for good).
  if (!apiStatus && delivered !== 'terminal') {
    const proof = { logLength: appender.written, logCrc32: appender.crc32 };
    shown = await finish(api, kind, job.id, { ...final, exitCode: shellExitCode(outcome), ...proof }, flushTimeoutMs, giveUpFlush.signal);
  }
  const status = shown?.status ?? apiStatus ?? null;
  if (status) say(`${kind} ${job.id} ${status}${outcome.spawnError ? '' : ` (exit code ${exitCode})`}`);
  return exitCode;
}

/** What `buildlog run` exits with: the command's code, or what a shell reports for the way it was stopped. */
function runExitCode(reason: StopReason | null, outcome: CommandOutcome): number {
  if (!reason) return shellExitCode(outcome);
  if (reason.kind === 'timeout') return 124; // as timeout(1)
  if (reason.kind === 'signal') return 128 + constants.signals[reason.signal];
  return 128 + constants.signals.SIGTERM; // stopped with SIGTERM on the API's request
}

function finalStatus(reason: StopReason | null, outcome: CommandOutcome, timeoutSecs?: number) {
  if (reason?.kind === 'timeout') return { status: 'TIMED-OUT' as const, statusMessage: `Timed out after ${timeoutSecs} s` };
  if (reason?.kind === 'signal') return { status: 'ABORTED' as const, statusMessage: `Aborted: buildlog run received ${reason.signal}` };
  if (outcome.spawnError) return { status: 'FAILED' as const, statusMessage: `Could not start the command (${outcome.spawnError.code})` };
  if (outcome.code === 0) return { status: 'SUCCEEDED' as const, statusMessage: 'Exited with code 0' };
  return {
    status: 'FAILED' as const,
    statusMessage: outcome.code !== null ? `Exited with code ${outcome.code}` : `Killed by ${outcome.signal}`,
  };
}

/**
 * Creates the job, retrying briefly. Resolves null when the server cannot be reached and
 * `--allow-offline` is given; any other failure is an error (exit code 2, the command is not run).
 */
async function createJob(api: BuildlogApi, kind: JobKind, flags: RunFlags): Promise<WireJob | null> {
  const body = { actId: flags.actor, buildNumber: flags.buildNumber, origin: 'CLI' };
  const backoff = new Backoff(250, 1000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.createJob(kind, body);
    } catch (err) {
      if (isRetryable(err) && attempt < 4) {
        await sleep(backoff.next());
        continue;
      }
      if (err instanceof ErrorResponse && !isRetryable(err)) {
        throw new UsageError(`cannot create the ${kind} at ${api.url}: ${err.message} (${err.type})`);
      }
      const why = err instanceof NetworkError ? err.message : `the server at ${api.url} answers ${(err as Error).message}`;
      if (!flags.allowOffline) {
        throw new UsageError(`${why}; the command was not run. Start the server or check BUILDLOG_URL / --url, or pass --allow-offline to run it without a log.`);
      }
      say(`${why}; running the command without a log (--allow-offline)`);
      return null;
    }
  }
}

/**
 * Sets the final status, with the length and CRC-32 of the output sent when given (a verified finish),
 * retrying while the server is away; a job already terminal is fine too.
 */
async function finish(
  api: BuildlogApi,
  kind: JobKind,
  id: string,
  body: { status: JobStatus; statusMessage: string; exitCode: number; logLength?: number; logCrc32?: number },
  timeoutMs: number,
  signal: AbortSignal,
): Promise<WireJob | null> {
  const deadline = Date.now() + timeoutMs;
  const backoff = new Backoff(250, 5000);
  for (;;) {
    try {
      return await api.setStatus(kind, id, body);
    } catch (err) {
      if (err instanceof ErrorResponse && err.status === 409 && body.logLength !== undefined) {
        // The server's log is not what we sent (bytes it acknowledged were lost, say to a restore from
        // a backup): they cannot be sent again, so finish without the proof rather than leave it RUNNING.
        say(`the server's log differs from the output sent (${err.message}); finishing without verification`);
        const { logLength: _length, logCrc32: _crc, ...unverified } = body;
        body = unverified;
        continue;
      }
      if (err instanceof ErrorResponse && err.status === 400) {
        // Someone else changed it first: a graceful abort (ABORTING may only become ABORTED) or an
        // abort that raced with the command's exit (terminal: nothing to do).
        const job = await api.getJob(kind, id).catch(() => null);
        const next = job?.status === 'ABORTING' ? 'ABORTED' : job?.status === 'TIMING-OUT' ? 'TIMED-OUT' : null;
        if (!next || next === body.status) return job;
        body = { ...body, status: next };
        continue;
      }
      if (!isRetryable(err) || Date.now() > deadline || signal.aborted) {
        say(`could not set the ${kind}'s status to ${body.status}: ${(err as Error).message}`);
        return null;
      }
      await sleep(backoff.next(), signal);
    }
  }
}

/**
 * Echoes the command's output to our own stdout/stderr and hands it to the log, both masked. Returns
 * the function to call once the output ended, which lets out what the masker still held.
 */
function relay(from: Readable, to: NodeJS.WriteStream, masker: SecretMasker, toLog: (chunk: Buffer) => void): () => void {
  let broken = false;
  to.on('error', () => {
    // Our own output went away (e.g. `| head` exited): keep logging, stop echoing.
    broken = true;
    from.resume();
  });
  const pass = (chunk: Buffer): boolean => {
    if (chunk.length === 0) return true;
    toLog(chunk);
    if (to === process.stderr) stderrAtLineStart = chunk[chunk.length - 1] === 0x0a;
    return broken || to.write(chunk);
  };
  from.on('data', (chunk: Buffer) => {
    let flowing = true;
    masker.pushParts(chunk, (part) => void (flowing = pass(part) && flowing));
    if (flowing) return;
    from.pause();
    to.once('drain', () => from.resume());
  });
  return () => void pass(masker.end());
}
