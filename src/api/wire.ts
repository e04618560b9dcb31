import { isTerminal, type JobRecord } from '../core/job.js';
import type { UserRecord } from '../store/store.js';

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/**
 * The job object the Apify clients read (`apify builds info`, `runs log`, `waitForFinish`). Fields we have
 * no data for are null, never missing.
 */
export function jobToWire(job: JobRecord, now = Date.now()) {
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
      ...(job.kind === 'build' ? { imageSizeBytes: null } : {}),
    },
    usage: null,
  };
  if (job.kind === 'build') return { ...common, options: { ...job.options } };
  return {
    ...common,
    buildId: job.buildId,
    options: { build: job.buildNumber ?? 'latest', timeoutSecs: null, memoryMbytes: null, diskMbytes: null, ...job.options },
    defaultKeyValueStoreId: null,
    defaultDatasetId: null,
    defaultRequestQueueId: null,
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
