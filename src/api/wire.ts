import { isTerminal, type JobRecord } from '../core/job.js';
import type { UserRecord } from '../store/store.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The job object the Apify clients read (`apify builds info`, `runs log`, `waitForFinish`). Fields we have
 * no data for are null, never missing. `logStart`: the log's first retained byte, which is how many
 * bytes retention dropped (`logTruncatedBytes`, ours; null where it was not looked up, as in lists).
 */
export function jobToWire(job: JobRecord, { logStart = null, now = Date.now() }: { logStart?: number | null; now?: number } = {}) {
  const durationMillis = (job.finishedAt ?? (isTerminal(job.status) ? job.startedAt : now)) - job.startedAt;
  const common = {
    id: job.id,
    actId: job.actId,
    userId: job.userId,
    startedAt: iso(job.startedAt),
    finishedAt: iso(job.finishedAt),
    status: job.status,
    statusMessage: job.statusMessage,
    meta: { origin: job.origin, clientIp: null, userAgent: null, ...job.meta },
    buildNumber: job.buildNumber,
    exitCode: job.exitCode,
    stats: {
      durationMillis,
      runTimeSecs: durationMillis / 1000,
      computeUnits: 0,
      // `apify runs info` formats these as numbers (null would crash it): we measure none of them.
      ...(job.kind === 'build' ? { imageSizeBytes: null } : { cpuAvgUsage: 0, cpuMaxUsage: 0, memAvgBytes: 0, memMaxBytes: 0 }),
    },
    usage: null,
    logTruncatedBytes: logStart,
  };
  if (job.kind === 'build') return { ...common, options: { ...job.options } };
  return {
    ...common,
    buildId: job.buildId,
    // Numbers, not null, for the same reason; 0 = no limit.
    options: { build: job.buildNumber ?? 'latest', timeoutSecs: 0, memoryMbytes: 0, diskMbytes: 0, ...job.options },
    // buildlog keeps no storages; the ids let `apify runs info/ls` look them up and get a 404 (src/api/storages.ts).
    defaultKeyValueStoreId: job.id,
    defaultDatasetId: job.id,
    defaultRequestQueueId: job.id,
    generalAccess: 'FOLLOW_USER_SETTING',
  };
}

const FEATURES = [
  'ACTORS',
  'STORAGE',
  'SCHEDULER',
  'PROXY',
  'PROXY_EXTERNAL_ACCESS',
  'PROXY_RESIDENTIAL',
  'PROXY_SERPS',
  'WEBHOOKS',
  'ACTORS_PUBLIC_ALL',
  'ACTORS_PUBLIC_DEVELOPER',
];

/** `GET /v2/users/me`: what `apify login` and `apify builds log` read (id, username, proxy.password). */
export function userToWire(user: UserRecord) {
  return {
    id: user.id,
    username: user.username,
    profile: { name: user.username, bio: null, pictureUrl: null, githubUsername: null, websiteUrl: null, twitterUsername: null },
    email: null,
    proxy: { password: user.proxyPassword, groups: [] },
    plan: { id: 'SELF_HOSTED', description: 'buildlog self-hosted', availableProxyGroups: {} },
    effectivePlatformFeatures: Object.fromEntries(
      FEATURES.map((f) => [
        f,
        { isEnabled: f === 'ACTORS', disabledReason: null, disabledReasonType: null, isTrial: false, trialExpirationAt: null },
      ]),
    ),
    isPaying: false,
    createdAt: iso(user.createdAt),
  };
}
