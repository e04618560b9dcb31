import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** How often a node tells Redis what it counted and learns what the others did. */
export const SYNC_MS = 100;
/** A node that has not synced for this long is taken for dead: its open streams no longer count. */
const NODE_TTL_MS = 5_000;

interface WindowCount {
  windowEnd: number;
  /** Counted here since the last sync. */
  local: number;
  /** The installation's count at the last sync (ours included). */
  shared: number;
}

/**
 * Counts shared by the nodes of an installation through Redis, read synchronously: the request path
 * (and the framework-free fast path) cannot wait for a round trip. Each node counts locally and every
 * SYNC_MS adds what it counted to Redis and learns the others' counts, so a limit holds across nodes
 * up to what the other nodes count within one sync interval.
 *
 * Two kinds: request counts in fixed windows aligned to the clock (the same window on every node), and
 * gauges (streams a client holds open), kept per node in a hash that expires when the node stops syncing.
 */
export class SharedCounts {
  readonly #node = randomBytes(8).toString('hex');
  readonly #windows = new Map<string, WindowCount>();
  /** This node's gauges, and whether each changed since the last sync. */
  readonly #gauges = new Map<string, number>();
  #gaugesDirty = false;
  /** The other nodes' gauges, summed, as of the last sync. */
  #othersGauges = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;
  #syncing: Promise<void> | null = null;

  constructor(
    private readonly redis: Redis,
    private readonly prefix = 'buildlog:limits',
    private readonly now: () => number = Date.now,
  ) {}

  /** Syncs every SYNC_MS until stop(). */
  start(onError: (err: Error) => void): void {
    this.#timer = setInterval(() => {
      if (!this.#syncing) this.#syncing = this.sync().catch(onError).finally(() => (this.#syncing = null));
    }, SYNC_MS);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#syncing;
    // Our streams stop counting at once, not only when the hash expires.
    await this.redis.del(`${this.prefix}:gauges:${this.#node}`).catch(() => undefined);
  }

  /** Counts one request of `key` in the current `windowMs` window; returns the installation's count and the ms left. */
  hit(key: string, windowMs: number): { count: number; msLeft: number } {
    const now = this.now();
    const windowEnd = (Math.floor(now / windowMs) + 1) * windowMs;
    const id = `${key}@${windowEnd}`;
    let w = this.#windows.get(id);
    if (!w) this.#windows.set(id, (w = { windowEnd, local: 0, shared: 0 }));
    w.local++;
    return { count: w.shared + w.local, msLeft: windowEnd - now };
  }

  /** Changes this node's gauge `key` by `delta`. */
  adjust(key: string, delta: number): void {
    const n = (this.#gauges.get(key) ?? 0) + delta;
    if (n > 0) this.#gauges.set(key, n);
    else this.#gauges.delete(key);
    this.#gaugesDirty = true;
  }

  /** Gauge `key` over all nodes: this node's now, the others' as of the last sync. */
  gauge(key: string): number {
    return (this.#gauges.get(key) ?? 0) + (this.#othersGauges.get(key) ?? 0);
  }

  /** One exchange with Redis (the timer's; tests call it to make the nodes agree now). */
  async sync(): Promise<void> {
    const now = this.now();
    const pipeline = this.redis.pipeline();
    const sent: [WindowCount, number][] = [];
    for (const [id, w] of this.#windows) {
      if (w.windowEnd <= now) {
        this.#windows.delete(id);
        continue;
      }
      const key = `${this.prefix}:count:${id}`;
      // A window counted here: add ours and learn the total; otherwise only learn it.
      if (w.local > 0) pipeline.incrby(key, w.local).pexpire(key, w.windowEnd - now + 1000);
      else pipeline.get(key);
      sent.push([w, w.local]);
    }
    const gauges = `${this.prefix}:gauges:${this.#node}`;
    const nodes = `${this.prefix}:nodes`;
    if (this.#gaugesDirty) {
      pipeline.del(gauges);
      if (this.#gauges.size) pipeline.hset(gauges, Object.fromEntries(this.#gauges));
      this.#gaugesDirty = false;
    }
    pipeline.pexpire(gauges, NODE_TTL_MS).zadd(nodes, now, this.#node).zremrangebyscore(nodes, '-inf', now - NODE_TTL_MS).zrange(nodes, 0, -1);
    let replies: [Error | null, unknown][];
    try {
      replies = (await pipeline.exec()) ?? [];
    } catch (err) {
      this.#gaugesDirty = true;
      throw err;
    }
    let r = 0;
    for (const [w, local] of sent) {
      const [err, value] = replies[r]!;
      r += local > 0 ? 2 : 1;
      if (err) continue;
      // Appends counted during the round trip stay local until the next sync.
      w.local -= local;
      w.shared = Number(value ?? 0);
    }
    const others = ((replies.at(-1)?.[1] as string[] | undefined) ?? []).filter((n) => n !== this.#node);
    const sums = new Map<string, number>();
    if (others.length) {
      const read = this.redis.pipeline();
      for (const n of others) read.hgetall(`${this.prefix}:gauges:${n}`);
      for (const [err, hash] of (await read.exec()) ?? []) {
        if (err) continue;
        for (const [key, value] of Object.entries(hash as Record<string, string>)) sums.set(key, (sums.get(key) ?? 0) + Number(value));
      }
    }
    this.#othersGauges = sums;
  }
}
