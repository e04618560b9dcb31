import { ErrorResponse, type BuildlogApi, isRetryable, isTerminal, type JobKind, type WireJob } from './api.js';
import { Backoff, sleep } from './backoff.js';

/**
 * Calls `onTerminal` as soon as the job turns terminal through someone else (an abort through the API).
 * It holds `GET ...?waitForFinish=60` open in a loop: the server answers the moment the status changes,
 * so this reacts within one round trip and costs one request a minute while nothing happens. Survives
 * server restarts (retries with back-off); stops when `signal` aborts.
 */
export function watchJob(
  api: BuildlogApi,
  kind: JobKind,
  id: string,
  onTerminal: (job: WireJob) => void,
  signal: AbortSignal,
): Promise<void> {
  const backoff = new Backoff(250, 5000);
  return (async () => {
    while (!signal.aborted) {
      try {
        const job = await api.getJob(kind, id, { waitForFinish: 60, signal });
        backoff.reset();
        if (signal.aborted) return;
        if (isTerminal(job.status)) return onTerminal(job);
      } catch (err) {
        if (signal.aborted) return;
        // A job that is gone or unreadable cannot be watched; appends will report that.
        if (err instanceof ErrorResponse && !isRetryable(err)) return;
        await sleep(backoff.next(), signal);
      }
    }
  })();
}
