import { createServer } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import { clientErrorHandler, frameworkErrorHandler } from '../api/errors.js';
import type { FastPath } from '../api/fast-path.js';
import { registerApi } from '../api/index.js';
import { TakenConnections } from '../api/socket-follow.js';
import { serviceUnavailable } from '../api/api-error.js';
import { ensureTokenUser } from '../auth/tokens.js';
import { JobDeadlines } from '../core/deadlines.js';
import { JobService } from '../core/service.js';
import type { LiveBus } from '../live/bus.js';
import type { LogFollower } from '../live/follower.js';
import { StreamSlots } from '../limits/stream-slots.js';
import { DiskGuard } from '../ops/disk-guard.js';
import { Expirer } from '../ops/expiry.js';
import type { ReadinessCheck } from '../ops/health.js';
import { refuseDamaged } from '../ops/integrity.js';
import { Metrics, UNMATCHED_ROUTE } from '../ops/metrics.js';
import { opsRoutes } from '../ops/routes.js';
import type { Store } from '../store/store.js';
import { openBus, openSharedCounts, openStore } from './backends.js';
import type { Config } from './config.js';
import { chooseLogFormat, loggerOptions } from './logging.js';

/** How long a stopping server waits for responses to reach their readers before it cuts the connections. */
const SHUTDOWN_GRACE_MS = 3_000;

export interface RunningServer {
  app: FastifyInstance;
  store: Store;
  bus: LiveBus;
  service: JobService;
  metrics: Metrics;
  diskGuard: DiskGuard;
  expirer: Expirer;
  /** Inactivity timeouts and graceful aborts that ran out. */
  deadlines: JobDeadlines;
  /** Base URL without /v2, as the Apify clients take it. */
  url: string;
  close(): Promise<void>;
}

/** Assembles store, bus, service and API, and listens. */
export async function startServer(config: Config, logger: boolean | object = false): Promise<RunningServer> {
  const metrics = new Metrics();
  // Indexing problems go to the server log once it exists.
  let reportProblem = (_message: string): void => undefined;
  const store = await openStore(config, {
    server: true,
    onProblem: (message) => reportProblem(message),
    onCommit: metrics.commitDuration.observe,
  });
  const diskGuard = new DiskGuard(store, config.maxDiskUsageBytes);
  let bus: LiveBus | undefined;
  let shared: Awaited<ReturnType<typeof openSharedCounts>> = null;
  try {
    bus = await openBus(config, (message) => reportProblem(message));
    const service = new JobService(store, bus, config, {
      beforeAppend: () => diskGuard.check(),
      appended: (bytes) => {
        metrics.appends.inc();
        metrics.appendedBytes.inc(bytes);
      },
      liveWrite: metrics.fanoutDelay.observe,
    });
    await refuseDamaged(store, config);
    await diskGuard.start();
    if (config.token) await ensureTokenUser(store, config.token);
    let fastPath: FastPath | null = null;
    const app = Fastify({
      logger: logger === true ? loggerOptions(config.logLevel, chooseLogFormat(config.logFormat)) : logger,
      bodyLimit: config.maxBodyBytes,
      routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
      // Route schemas validate exactly what arrives: no type coercion (query values and headers stay strings,
      // a body's "5" is not 5); `x-expects` and `x-name` make the 400 that names a bad value (api/validation.ts).
      ajv: { customOptions: { coerceTypes: false, keywords: ['x-expects', 'x-name'] } },
      // Requests arriving while we close get our own 503 in the Apify envelope (hook below), not Fastify's.
      return503OnClosing: false,
      // Errors raised before any route runs get the Apify envelope too.
      frameworkErrors: frameworkErrorHandler,
      clientErrorHandler,
      // Slow or half-open clients cannot hold the server: headers must arrive within --headers-timeout (15 s)
      // and a whole request (an append body) within --request-timeout (2 min). Responses are not bounded: a quiet build may stream for hours.
      requestTimeout: config.requestTimeoutSecs * 1000,
      serverFactory: (handler) =>
        createServer(
          {
            headersTimeout: config.headersTimeoutSecs * 1000,
            requestTimeout: config.requestTimeoutSecs * 1000,
            // Fastify's own default, which it does not apply to a server from serverFactory (Node's is 5 s,
            // short enough that clients reusing a connection race the server closing it).
            keepAliveTimeout: 72_000,
            connectionsCheckingInterval: Math.min(5_000, config.headersTimeoutSecs * 1000, config.requestTimeoutSecs * 1000),
          },
          (req, res) => {
            if (!fastPath?.(req, res, () => handler(req, res))) handler(req, res);
          },
        ),
    });
    reportProblem = (message) => app.log.warn(message);
    const followers = new Set<LogFollower>();
    const taken = new TakenConnections(app.server);
    metrics.watch({
      store,
      liveFollowers: () => {
        let n = 0;
        for (const f of followers) if (f.live) n++;
        return n;
      },
    });
    // By route pattern (never the path: it holds ids); a path no route serves counts as one label.
    app.addHook('onResponse', (req, reply, done) => {
      metrics.request(req.routeOptions.url ?? UNMATCHED_ROUTE, req.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
    // Responses finished while shutting down (appends that were under way) tell the client that the
    // connection ends, so it does not send its next request into a socket that is about to close.
    let closing = false;
    app.addHook('onSend', (_req, reply, payload, done) => {
      if (closing) reply.header('Connection', 'close');
      done(null, payload);
    });
    app.addHook('onRequest', async () => {
      if (closing) throw serviceUnavailable('The server is shutting down; retry in a moment.', 1);
    });
    shared = await openSharedCounts(config, (message) => reportProblem(message));
    const sharedCounts = shared?.counts;
    fastPath = await registerApi(app, { service, config, followers, taken, streamSlots: new StreamSlots(config.maxStreamsPerClient, sharedCounts), sharedCounts, metrics }, () => closing);
    // Every backend this node depends on: the store, and Redis when nodes share live events through it.
    const checks: ReadinessCheck[] = [{ name: 'store', check: () => store.probe() }];
    const probeBus = bus.probe?.bind(bus);
    if (probeBus) checks.push({ name: 'live bus', check: probeBus });
    opsRoutes(app, { checks, metrics, metricsToken: config.metricsToken });
    // A crowd of followers (re)connecting at once, e.g. after a restart, must not overflow the accept queue
    // (Node's default 511 drops SYNs, and each drop costs the client a 1 s, then 2 s... retransmit).
    // The kernel caps it at net.core.somaxconn.
    await app.listen({ host: config.host, port: config.port, backlog: 4096 });
    const deadlines = new JobDeadlines(service, store, config);
    deadlines.start();
    const expirer = new Expirer(
      {
        store,
        // The same path as DELETE /v2/actor-builds/:id: the log leaves the read cache, followers end.
        remove: async (id) => {
          const job = await store.getJob(id);
          if (job) await service.delete(job);
        },
        onExpired: () => metrics.expiredJobs.inc(),
      },
      config.expireAfterSecs,
    );
    expirer.start();
    const address = app.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    return {
      app,
      store,
      bus,
      service,
      metrics,
      diskGuard,
      expirer,
      deadlines,
      url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
      async close() {
        closing = true;
        diskGuard.stop();
        await deadlines.stop();
        await expirer.stop();
        service.close();
        // Connections kept between polls close at once, as Node's server closes its idle ones.
        taken.closeKept();
        for (const f of followers) f.stop();
        // Stopped streams close their connections once their last bytes are out, responses finished from
        // now on say `Connection: close`; after a grace period whatever is still open is cut: a reader that
        // stopped reading would otherwise hold its response, and the exit, forever.
        const cut = setTimeout(() => {
          app.server.closeAllConnections();
          taken.cutAll();
        }, SHUTDOWN_GRACE_MS);
        try {
          await app.close();
        } finally {
          clearTimeout(cut);
        }
        await shared?.close();
        await bus!.close();
        await store.close();
      },
    };
  } catch (err) {
    diskGuard.stop();
    await shared?.close();
    await bus?.close();
    await store.close();
    throw err;
  }
}
