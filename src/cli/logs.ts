import { ErrorResponse, BuildlogApi, isTerminal, NetworkError } from '../client/api.js';
import { resolveClientConfig, UsageError, type ClientFlags } from '../client/config.js';
import { readLog } from '../client/log-reader.js';
import { AnsiFilter } from '../text/ansi-filter.js';

/** Options of `buildlog logs` as commander gives them. */
export interface LogsFlags extends ClientFlags {
  follow?: boolean;
  raw?: boolean;
  sinceOffset?: string;
}

/**
 * `buildlog logs <id>`: the log on stdout and nothing else there. Exit code 0 when the job succeeded
 * (or is still running, without --follow), 1 when it ended otherwise, 2 for usage and network errors.
 */
export async function logs(id: string, flags: LogsFlags): Promise<void> {
  // Our stdout went away (`| head` exited): nothing more to do.
  process.stdout.on('error', () => process.exit(0));
  let code: number;
  try {
    code = await printLog(id, flags);
  } catch (err) {
    process.stderr.write(`buildlog: ${describe(err, id)}\n`);
    code = 2;
  }
  process.exit(code);
}

function describe(err: unknown, id: string): string {
  if (err instanceof ErrorResponse && err.status === 404) return `no build or run with id "${id}" (${err.type})`;
  if (err instanceof ErrorResponse) return `${err.message} (${err.type}, HTTP ${err.status})`;
  if (err instanceof NetworkError || err instanceof UsageError) return err.message;
  return err instanceof Error ? err.message : String(err);
}

async function printLog(id: string, flags: LogsFlags): Promise<number> {
  let from = 0;
  if (flags.sinceOffset !== undefined) {
    if (!/^\d{1,15}$/.test(flags.sinceOffset)) {
      throw new UsageError(`--since-offset must be a byte offset (a whole number), got "${flags.sinceOffset}"`);
    }
    from = Number(flags.sinceOffset);
  }
  const api = new BuildlogApi(resolveClientConfig(flags));
  // The reader always fetches raw bytes (so that it can count offsets); the filter runs here instead.
  const filter = flags.raw ? null : new AnsiFilter();
  let reported = -1;
  const chunks = readLog(api, id, {
    from,
    follow: Boolean(flags.follow),
    onSkipped: (wanted, start) =>
      process.stderr.write(`buildlog: bytes ${wanted}-${start - 1} are no longer retained; printing from ${start}\n`),
    onReconnect: (offset, why) => {
      if (offset === reported) return; // once per outage, not once per attempt
      reported = offset;
      process.stderr.write(`buildlog: connection lost (${why}); resuming at byte ${offset}\n`);
    },
  });
  for await (const chunk of chunks) await write(filter ? filter.push(chunk) : chunk);
  if (filter) await write(filter.end());

  const job = await api.findJob(id);
  if (job.status === 'SUCCEEDED' || !isTerminal(job.status)) return 0;
  return 1;
}

/** Writes to stdout, waiting while the pipe is full. */
function write(data: Buffer): Promise<void> {
  if (data.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    if (process.stdout.write(data)) resolve();
    else process.stdout.once('drain', resolve);
  });
}
