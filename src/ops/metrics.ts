import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { JOB_STATUSES, type JobKind } from '../core/job.js';
import type { Store } from '../store/store.js';
import { TallyCounter, TallyHistogram, type CounterSeries, type HistogramSeries } from './tally.js';

/** Request durations: from sub-millisecond reads of finished logs to streams that follow a build for minutes. */
const HTTP_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Group commits (one fsync each) and commit-to-socket delays. */
const FAST_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** Route label of a request no route matched: never the path itself (it may hold an id or a token). */
export const UNMATCHED_ROUTE = 'unmatched';

interface HttpSeries {
  requests: CounterSeries;
  duration: HistogramSeries;
}

export interface MetricsSources {
  store: Store;
  /** Live (following) log responses open now. */
  liveFollowers(): number;
}

/**
 * The Prometheus metrics of one server. Hot paths hold their series and bump them (see tally.ts); what is
 * a count of state (jobs by status, followers) is read when scraped, so it costs nothing in between.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly #httpRequests = new TallyCounter('buildlog_http_requests_total', 'HTTP requests answered, by route pattern, method and status.', ['route', 'method', 'status']).register(this.registry);
  readonly #httpDuration = new TallyHistogram('buildlog_http_request_duration_seconds', 'Time from request to the end of its response, by route pattern.', ['route'], HTTP_BUCKETS).register(this.registry);
  readonly #http = new Map<string, HttpSeries>();
  readonly appendedBytes = new TallyCounter('buildlog_appended_bytes_total', 'Log bytes appended (committed).', []).register(this.registry).series();
  readonly appends = new TallyCounter('buildlog_appends_total', 'Appends that committed bytes (retries and heartbeats not counted).', []).register(this.registry).series();
  readonly commitDuration = new TallyHistogram('buildlog_store_commit_duration_seconds', 'Duration of one store commit (a group of appends sharing one fsync).', [], FAST_BUCKETS).register(this.registry).series();
  readonly fanoutDelay = new TallyHistogram('buildlog_fanout_delay_seconds', 'From the commit of an append to its bytes being written to a live follower\'s response.', [], FAST_BUCKETS).register(this.registry).series();
  readonly expiredJobs = new TallyCounter('buildlog_expired_jobs_total', 'Finished jobs deleted with their log by expiry.', []).register(this.registry).series();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Registers the gauges read from the server's state when scraped. */
  watch(sources: MetricsSources): void {
    new Gauge({
      name: 'buildlog_live_followers',
      help: 'Log responses following a live job now.',
      registers: [this.registry],
      collect() {
        this.set(sources.liveFollowers());
      },
    });
    new Gauge({
      name: 'buildlog_jobs',
      help: 'Jobs in the store, by kind and status.',
      labelNames: ['kind', 'status'],
      registers: [this.registry],
      async collect() {
        const counts = await sources.store.jobCounts();
        // Every kind and status is reported, 0 included, so that a series does not vanish when it empties.
        for (const kind of ['build', 'run'] as JobKind[]) {
          for (const status of JOB_STATUSES) this.set({ kind, status }, 0);
        }
        for (const c of counts) this.set({ kind: c.kind, status: c.status }, c.count);
      },
    });
  }

  /** Counts one answered request; `route` is the pattern (`/v2/logs/:id`), never the path. */
  request(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let s = this.#http.get(key);
    if (!s) {
      s = { requests: this.#httpRequests.series(route, method, String(status)), duration: this.#httpDuration.series(route) };
      this.#http.set(key, s);
    }
    s.requests.inc();
    s.duration.observe(seconds);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
