import { createUser } from '../auth/tokens.js';
import { resolveConfig } from '../server/config.js';
import { openStore } from '../server/backends.js';

/** `buildlog users add NAME`: prints the new token as the last line of stdout. */
export async function addUser(name: string, flags: { data?: string; databaseUrl?: string; databaseSchema?: string }): Promise<void> {
  const config = resolveConfig({ data: flags.data, databaseUrl: flags.databaseUrl, databaseSchema: flags.databaseSchema });
  const store = await openStore(config);
  try {
    const { user, token } = await createUser(store, name);
    process.stderr.write(`Created user "${user.username}" (id ${user.id}). Its token, shown only this once:\n`);
    process.stdout.write(`${token}\n`);
  } finally {
    await store.close();
  }
}
