import type { Config } from '../server/config.js';
import { databaseFile } from '../store/sqlite.js';
import { StoreOpenError } from '../store/errors.js';
import type { Store } from '../store/store.js';

/**
 * The quick check every start runs: a damaged store is refused at once with what is damaged, instead of
 * failing later on the read that meets it.
 */
export async function refuseDamaged(store: Store, config: Pick<Config, 'dataDir' | 'databaseUrl' | 'databaseSchema'>): Promise<void> {
  const problems = await store.verify('quick');
  if (problems.length === 0) return;
  const found = problems.join('; ');
  if (config.databaseUrl) {
    throw new StoreOpenError(`PostgreSQL schema "${config.databaseSchema}" is damaged: ${found}. Restore it from the database's backup.`);
  }
  throw new StoreOpenError(
    `${databaseFile(config.dataDir)} is damaged: ${found}. ` +
      `Run \`buildlog check --data ${config.dataDir}\` for a full report, and restore the last backup (\`buildlog backup\`).`,
  );
}
