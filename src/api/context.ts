import type { JobService } from '../core/service.js';
import type { LogFollower } from '../live/follower.js';
import type { SharedCounts } from '../limits/shared-counts.js';
import type { StreamSlots } from '../limits/stream-slots.js';
import type { Metrics } from '../ops/metrics.js';
import type { Config } from '../server/config.js';
import type { TakenConnections } from './socket-follow.js';

/** What every API plugin gets from the server assembly. */
export interface ApiContext {
  service: JobService;
  config: Config;
  /** Open log responses, ended cleanly on shutdown. */
  followers: Set<LogFollower>;
  /** Connections of followers taken from Node's HTTP server (api/socket-follow.ts). */
  taken: TakenConnections;
  /** Caps the streaming responses each client holds open. */
  streamSlots: StreamSlots;
  /** Limits counted across the nodes of an installation (scale-out with Redis). */
  sharedCounts?: SharedCounts;
  /** The Prometheus metrics (fed by the fast path in front of Fastify too). */
  metrics?: Metrics;
}
