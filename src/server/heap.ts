import v8 from 'node:v8';

/**
 * How far V8 lets the old generation grow past what survived its last mark-compact before it collects
 * again (V8's own default is about 100 % here, the heap doubling between full collections).
 *
 * Why a log server changes it: 10,000 followers connecting at once leave about 45 MB of promoted request
 * garbage beside 56 MB of live followers, and with the default growth V8 ran only two mark-compacts
 * during the burst, so that garbage stays resident while the followers idle (heap snapshots and V8's
 * heap-space statistics of the bench's idle row). At 50 % it collects sooner: the idle row's RSS went
 * from 211-239 MB to 182-214 MB (mostly ~188) over the same runs, for about 10 % more CPU while the crowd
 * connects. `--max-semi-space-size=2` was tried too: 15-30 MB less, but it slowed the finished-log GETs
 * by 10-20 % and can only be set on Node's command line.
 */
const HEAP_GROWING_PERCENT = 50;

/** Node's own options: its command line and NODE_OPTIONS, which process.execArgv does not show. */
function nodeOptions(): string[] {
  return [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
}

/**
 * Sets V8's heap growth for a long-running server, unless Node's options chose one already (the
 * operator's `node --heap-growing-percent=N` or NODE_OPTIONS wins). Returns whether it set it.
 */
export function keepHeapNearLive(options: readonly string[] = nodeOptions()): boolean {
  if (options.some((arg) => /^--heap[-_]growing[-_]percent\b/.test(arg))) return false;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}
