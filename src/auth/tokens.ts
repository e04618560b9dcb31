import { createHash, randomBytes } from 'node:crypto';
import { newId } from '../core/ids.js';
import type { Store, UserRecord } from '../store/store.js';

/** A new API token: 32 random alphanumerics (~190 bits) behind a recognisable prefix. */
export function newToken(): string {
  return `buildlog_${newId(32)}`;
}

/**
 * Tokens are stored only as SHA-256 hashes. They carry ~190 bits of entropy, so a fast hash is enough (no
 * salt or KDF needed), and lookup by hash means no token is ever compared byte by byte in user space.
 */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function isValidUsername(name: string): boolean {
  return USERNAME.test(name);
}

/** Creates a user owning `token` (a new one when not given). Returns the user and the clear token. */
export async function createUser(
  store: Store,
  username: string,
  token: string = newToken(),
): Promise<{ user: UserRecord; token: string }> {
  if (!isValidUsername(username)) {
    throw new Error(`invalid user name "${username}": use letters, digits, ".", "_" or "-" (at most 63)`);
  }
  if (await store.userByName(username)) throw new Error(`user "${username}" already exists`);
  const user: UserRecord = {
    id: newId(),
    username,
    tokenHash: hashToken(token),
    proxyPassword: randomBytes(12).toString('base64url'),
    createdAt: Date.now(),
  };
  await store.createUser(user);
  return { user, token };
}

/** Makes sure some user owns `token` (used by `BUILDLOG_TOKEN=T buildlog serve`): returns that user. */
export async function ensureTokenUser(store: Store, token: string): Promise<UserRecord> {
  for (let attempt = 0; ; attempt++) {
    const existing = await store.userByTokenHash(hashToken(token));
    if (existing) return existing;
    let name = 'admin';
    for (let i = 2; await store.userByName(name); i++) name = `admin${i}`;
    try {
      return (await createUser(store, name, token)).user;
    } catch (err) {
      // Several nodes starting at once with the same token: one creates the user, the others find it.
      if (attempt >= 2) throw err;
    }
  }
}
