import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { JobStatus } from '../core/job.js';
import type { LiveBus, LiveEvent, LiveListener } from './bus.js';
import { MemoryBus } from './memory.js';

/** Appends larger than this travel without their bytes: followers on other nodes read them from the store. */
export const INLINE_DATA_MAX = 64 * 1024;

export interface RedisBusOptions {
  url: string;
  /** One channel carries every job's events; nodes sharing it form one installation. */
  channel?: string;
  /** Told when a connection fails or comes back (the bus itself keeps retrying). */
  onConnectionEvent?: (what: string, err?: Error) => void;
}

/** What goes on the wire besides the bytes: the sending node, so that it skips its own echo. */
interface Header {
  n: string;
  t: LiveEvent['type'] | 'resync-all';
  j?: string;
  s?: number;
  e?: number;
  st?: JobStatus;
  /** When an append was committed (`eventTime()`), for the fan-out delay on the other nodes. */
  a?: number;
  /** The bytes follow the header line. */
  d?: 1;
}

/** The URL for a message: a password in it is not repeated. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the configured URL';
  }
}

function encode(node: string, event: LiveEvent | { type: 'resync-all' }): Buffer {
  const header: Header = { n: node, t: event.type };
  let data: Buffer | undefined;
  if (event.type !== 'resync-all') header.j = event.jobId;
  if (event.type === 'status') header.st = event.status;
  if (event.type === 'append') {
    header.s = event.start;
    header.e = event.end;
    if (event.at !== undefined) header.a = event.at;
    if (event.data && event.data.length <= INLINE_DATA_MAX) {
      header.d = 1;
      data = event.data;
    }
  }
  const head = Buffer.from(`${JSON.stringify(header)}\n`, 'utf8');
  return data ? Buffer.concat([head, data]) : head;
}

function decode(message: Buffer): { header: Header; event: LiveEvent | null } {
  const nl = message.indexOf(10);
  const header = JSON.parse(message.toString('utf8', 0, nl)) as Header;
  const jobId = header.j!;
  switch (header.t) {
    case 'append':
      return {
        header,
        event: { type: 'append', jobId, start: header.s!, end: header.e!, ...(header.a !== undefined ? { at: header.a } : {}), ...(header.d ? { data: message.subarray(nl + 1) } : {}) },
      };
    case 'status':
      return { header, event: { type: 'status', jobId, status: header.st! } };
    case 'deleted':
    case 'resync':
      return { header, event: { type: header.t, jobId } };
    default:
      return { header, event: null };
  }
}

/**
 * The bus between nodes: every node publishes its jobs' events on one Redis channel and dispatches what
 * the others publish to its own followers. Events are hints (DESIGN.md): followers read gaps back from the
 * store. What pub/sub cannot promise is repaired with `resync` events: when this node's subscription
 * comes back after a break, every job it follows is told to re-read its state; when its publishing
 * connection comes back, it asks every other node to do the same (they may have missed its events).
 * Redis holds no state for it (pub/sub only).
 *
 * Subscribing to one channel at open, instead of a channel per job, makes `subscribe()` effective at once
 * (the contract's first assumption) and costs a node the events of jobs it does not follow, which it drops
 * after reading one header line.
 */
export class RedisBus implements LiveBus {
  readonly #local = new MemoryBus();
  readonly #node: string;
  readonly #channel: string;
  readonly #pub: Redis;
  readonly #sub: Redis;
  #closed = false;

  private constructor(options: RedisBusOptions, node: string, pub: Redis, sub: Redis) {
    this.#node = node;
    this.#channel = options.channel ?? 'buildlog:live';
    this.#pub = pub;
    this.#sub = sub;
    const tell = options.onConnectionEvent ?? (() => undefined);
    let subBroken = false;
    sub.on('close', () => (subBroken = true));
    sub.on('error', (err: Error) => tell('subscriber connection failed', err));
    // ioredis subscribes again on reconnect, before 'ready'; whatever was published in between is lost.
    sub.on('ready', () => {
      if (!subBroken) return;
      subBroken = false;
      tell('subscriber connection restored');
      this.#resyncAll();
    });
    let pubBroken = false;
    pub.on('close', () => (pubBroken = true));
    pub.on('error', (err: Error) => tell('publisher connection failed', err));
    pub.on('ready', () => {
      if (!pubBroken) return;
      pubBroken = false;
      tell('publisher connection restored');
      this.#send({ type: 'resync-all' });
    });
    sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => this.#receive(message));
  }

  /** Connects and subscribes; resolves once events from other nodes are being received. */
  static async open(options: RedisBusOptions): Promise<RedisBus> {
    const node = randomBytes(8).toString('hex');
    // Named, so that an operator (or a test) can tell a node's connections apart in CLIENT LIST.
    const common = (role: string): RedisOptions => ({ lazyConnect: true, maxRetriesPerRequest: 1, connectionName: `buildlog-${node}-${role}` });
    // Publishing while Redis is away fails at once instead of queueing without bound; the peers catch up
    // through the resync sent on reconnect.
    const pub = new Redis(options.url, { ...common('pub'), enableOfflineQueue: false });
    const sub = new Redis(options.url, common('sub'));
    // ioredis reports why a connection failed as an 'error' event; connect() itself only says it closed.
    let cause: Error | undefined;
    const noteCause = (err: Error) => (cause ??= err);
    pub.on('error', noteCause);
    sub.on('error', noteCause);
    try {
      await Promise.all([pub.connect(), sub.connect()]);
      const bus = new RedisBus(options, node, pub, sub);
      await sub.subscribe(bus.#channel);
      return bus;
    } catch (err) {
      pub.disconnect();
      sub.disconnect();
      throw new Error(`Redis at ${withoutPassword(options.url)} is not usable: ${(cause ?? (err as Error)).message}`, { cause: cause ?? err });
    } finally {
      pub.off('error', noteCause);
      sub.off('error', noteCause);
    }
  }

  publish(event: LiveEvent): void {
    if (this.#closed) return;
    this.#local.publish(event);
    this.#send(event);
  }

  subscribe(jobId: string, listener: LiveListener): () => void {
    return this.#local.subscribe(jobId, listener);
  }

  /** This node's id on the channel; its connections are named `buildlog-<node>-pub` and `-sub`. */
  get node(): string {
    return this.#node;
  }

  /** Both connections answer a PING (readiness). */
  async probe(): Promise<void> {
    try {
      await Promise.all([this.#pub.ping(), this.#sub.ping()]);
    } catch (err) {
      throw new Error(`Redis does not answer: ${(err as Error).message}`);
    }
  }

  /** How many jobs have followers on this node. */
  get subscribedJobs(): number {
    return this.#local.subscribedJobs;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#local.close();
    await Promise.allSettled([this.#sub.quit(), this.#pub.quit()]);
  }

  #send(event: LiveEvent | { type: 'resync-all' }): void {
    // A lost publish is repaired by the resync-all sent when the connection is back.
    this.#pub.publish(this.#channel, encode(this.#node, event)).catch(() => undefined);
  }

  #receive(message: Buffer): void {
    if (this.#closed) return;
    let decoded: ReturnType<typeof decode>;
    try {
      decoded = decode(message);
    } catch {
      return; // Not ours (something else published on the channel).
    }
    if (decoded.header.n === this.#node) return;
    if (decoded.header.t === 'resync-all') return this.#resyncAll();
    if (decoded.event) this.#local.publish(decoded.event);
  }

  #resyncAll(): void {
    for (const jobId of this.#local.jobIds()) this.#local.publish({ type: 'resync', jobId });
  }
}
