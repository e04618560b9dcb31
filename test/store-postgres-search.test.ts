// Search on the PostgreSQL store beyond the contract: a database where pg_trgm cannot be used (the search
// contract then passes by reading the logs, with one warning), and logs written without the index (by a
// command, or --search-index-lazy) that the background catch-up indexes while answers stay the same.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { PostgresStore } from '../src/store/postgres.js';
import type { LogSearchQuery, Store } from '../src/store/store.js';
import { makeJob } from './contracts/store.contract.js';
import { storeSearchContract } from './contracts/store-search.contract.js';
import { waitFor } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

async function sql(url: string, text: string, values: unknown[] = []): Promise<pg.QueryResult> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await client.query(text, values);
  } finally {
    await client.end();
  }
}

describe('PostgresStore search without a usable pg_trgm', () => {
  // A database of its own whose pg_trgm lives in a schema the store's role may not use: the store can
  // neither create the extension (it exists) nor build its index with it, as on a server without it.
  const name = `buildlog_test_${newId().toLowerCase()}`;
  const url = new URL(DATABASE_URL);
  url.username = name;
  url.pathname = `/${name}`;
  const problems: string[] = [];

  before(async () => {
    await sql(DATABASE_URL, `CREATE ROLE ${name} LOGIN`);
    await sql(DATABASE_URL, `CREATE DATABASE ${name}`);
    const admin = new URL(DATABASE_URL);
    admin.pathname = `/${name}`;
    await sql(admin.href, `GRANT CREATE ON DATABASE ${name} TO ${name}; CREATE SCHEMA hidden; REVOKE ALL ON SCHEMA hidden FROM PUBLIC;
      CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA hidden`);
  });

  after(async () => {
    await sql(DATABASE_URL, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await sql(DATABASE_URL, `DROP ROLE IF EXISTS ${name}`);
  });

  storeSearchContract(async ({ retentionChars = 50_000_000 }, fn) => {
    const schema = `s_${newId().toLowerCase()}`;
    const opened: Store[] = [];
    const openOne = async () => {
      const store = await PostgresStore.open({ url: url.href, schema, retentionChars, indexLogs: true, onProblem: (m) => problems.push(m) });
      opened.push(store);
      return store;
    };
    try {
      await fn({ store: await openOne(), reopen: openOne, cleanup: async () => undefined });
    } finally {
      for (const s of opened) await s.close();
    }
  });

  test('each open warned once that searches read the logs, and why', () => {
    assert.ok(problems.length > 0);
    for (const p of problems) assert.match(p, /^search: no index \(the pg_trgm extension cannot be created: permission denied for schema hidden\); searches read the logs instead$/);
  });
});

describe('PostgresStore search catch-up', () => {
  const schema = `buildlog_test_${newId().toLowerCase()}`;
  after(() => sql(DATABASE_URL, `DROP SCHEMA IF EXISTS ${schema} CASCADE`));

  const q = (text: string): LogSearchQuery => ({ userId: 'catchup0000000001', text, offset: 0, limit: 20, linesPerJob: 3 });
  const count = async (text: string) => Number((await sql(DATABASE_URL, text)).rows[0].n);

  test('logs written without the index are indexed in the background once a server opens, and answer the same meanwhile', async () => {
    // A command (or a lazy server) writes: nothing is indexed.
    const writer = await PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 50_000_000 });
    const jobs = Array.from({ length: 30 }, (_, i) => makeJob({ userId: 'catchup0000000001', startedAt: 1_000 + i }));
    for (const [i, job] of jobs.entries()) {
      await writer.createJob(job);
      await writer.append(job.id, Buffer.from(`step 1\nstep 2 of job ${i}${i % 3 ? '' : ' needle'}\n`.repeat(200)));
      if (i % 2) await writer.updateJobStatus(job.id, 'RUNNING', { status: 'SUCCEEDED', finishedAt: 2_000 });
    }
    await writer.close();
    assert.equal(await count(`SELECT count(*) AS n FROM ${schema}.jobs WHERE search_to IS NULL`), 30);
    assert.equal(await count(`SELECT count(*) AS n FROM ${schema}.search_blocks`), 0);

    const server = await PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 50_000_000, indexLogs: true });
    try {
      const during = await server.searchLogs(q('needle'));
      assert.equal(during.total, 10);
      await waitFor(async () => (await count(`SELECT count(*) AS n FROM ${schema}.jobs WHERE search_to IS NULL`)) === 0, 20_000, 'the catch-up');
      assert.ok((await count(`SELECT count(*) AS n FROM ${schema}.search_blocks`)) > 0);
      assert.deepEqual(await server.searchLogs(q('needle')), during, 'the index answers as reading the logs did');

      // From now on an append is indexed in its own transaction.
      const late = makeJob({ userId: 'catchup0000000001', startedAt: 9_000 });
      await server.createJob(late);
      await server.append(late.id, Buffer.from('a late needle\n'));
      assert.equal(await count(`SELECT count(*) AS n FROM ${schema}.search_blocks WHERE job_id = '${late.id}'`), 1);
      const after = await server.searchLogs(q('needle'));
      assert.equal(after.total, 11);
      assert.deepEqual(after.hits[0]!.lines, [{ line: 1, offset: 0, text: 'a late needle' }]);
    } finally {
      await server.close();
    }
  });
});
