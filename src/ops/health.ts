import { serviceUnavailable } from '../api/api-error.js';

/** A backend that readiness depends on: `check` resolves when it answers and can be written. */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

/** A backend slower than this is as good as down for a load balancer. */
export const READY_TIMEOUT_MS = 1000;

function within(check: ReadinessCheck, ms: number): Promise<void> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([check.check(), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs every check at once; resolves with what answered, or throws a 503 naming each part that did not
 * (its message is the store's own, which says what is wrong and never holds a secret).
 */
export async function readiness(checks: readonly ReadinessCheck[]): Promise<Record<string, 'ok'>> {
  const results = await Promise.allSettled(checks.map((c) => within(c, READY_TIMEOUT_MS)));
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${checks[i]!.name}: ${(r.reason as Error).message}`] : []));
  if (failed.length) throw serviceUnavailable(`Not ready: ${failed.join('; ')}`, 5);
  return Object.fromEntries(checks.map((c) => [c.name, 'ok' as const]));
}
