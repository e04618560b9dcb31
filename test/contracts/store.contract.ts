/**
 * The Store contract: everything src/store/store.ts promises, runnable unchanged against every
 * implementation (SQLite now, PostgreSQL later). A runner calls `storeContract(name, open)` from a
 * `*.test.ts` file; `open` creates a fresh, empty store in a place of its own (a temp dir, a schema,
 * a database) and must be able to open that same place again (`reopen`), so durability can be checked.
 */
import { describe } from 'node:test';
import { harness, type OpenStore } from './store-harness.js';
import { storeJobListContract } from './store-jobs.contract.js';
import { storeSearchContract } from './store-search.contract.js';
import { storeImportContract } from './store-import.contract.js';
import { storeUsersAndJobsContract } from './store-users-jobs.contract.js';
import { storeAppendsContract } from './store-appends.contract.js';
import { storeRetentionContract } from './store-retention.contract.js';
import { storeDurabilityContract } from './store-durability.contract.js';
import { storeCommittedContract } from './store-committed.contract.js';

// What the parts and the backends' tests import from here.
export { makeJob, makeUser, readAll, type OpenStore, type StoreOpenOptions, type StoreUnderTest, type WithStore } from './store-harness.js';

export function storeContract(name: string, open: OpenStore): void {
  const { withStore, withJob } = harness(open);
  describe(name, () => {
    storeJobListContract(withStore);
    storeSearchContract(withStore);
    storeImportContract(withStore);
    storeUsersAndJobsContract(withStore, withJob);
    storeAppendsContract(withStore, withJob);
    storeRetentionContract(withJob);
    storeDurabilityContract(withStore, withJob);
    storeCommittedContract(withStore);
  });
}
