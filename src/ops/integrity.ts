import { databaseFile } from '../store/sqlite.js';
import { StoreOpenError } from '../store/errors.js';
import type { Store } from '../store/store.js';

/**
 * The quick check every start runs: a damaged data dir is refused at once with what is damaged, instead of
 * failing later on the read that meets it.
 */
export async function refuseDamaged(store: Store, dataDir: string): Promise<void> {
  const problems = await store.verify('quick');
  if (problems.length === 0) return;
  throw new StoreOpenError(
    `${databaseFile(dataDir)} is damaged: ${problems.join('; ')}. ` +
      `Run \`buildlog check --data ${dataDir}\` for a full report, and restore the last backup (\`buildlog backup\`).`,
  );
}
