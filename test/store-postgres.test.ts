// The PostgreSQL store against the machine's PostgreSQL (127.0.0.1:5432, database test;
// BUILDLOG_TEST_DATABASE_URL to change it): the Store contract, each run in a schema of its own, then what
// only this backend has (several nodes at once, migrations under a lock).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { newId } from '../src/core/ids.js';
import { StoreOpenError } from '../src/store/errors.js';
import { PostgresStore } from '../src/store/postgres.js';
import { SCHEMA_VERSION } from '../src/store/postgres-schema.js';
import type { Store } from '../src/store/store.js';
import { makeJob, makeUser, storeContract } from './contracts/store.contract.js';
import { waitFor } from './helpers/server.js';

const DATABASE_URL = process.env.BUILDLOG_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

const freshSchema = (): string => `buildlog_test_${newId().toLowerCase()}`;

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: DATABASE_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await client.end();
  }
}

storeContract('PostgresStore', async ({ retentionChars }) => {
  const schema = freshSchema();
  const opened: Store[] = [];
  const openOne = async (): Promise<Store> => {
    // As the server opens it: new logs are indexed as they are written.
    const s = await PostgresStore.open({ url: DATABASE_URL, schema, retentionChars, indexLogs: true });
    opened.push(s);
    return s;
  };
  return {
    store: await openOne(),
    reopen: openOne,
    async cleanup() {
      for (const s of opened) await s.close();
      await dropSchema(schema);
    },
  };
});

describe('PostgresStore specifics', () => {
  test('three nodes starting at once on an empty schema migrate it once and all work', async () => {
    const schema = freshSchema();
    const nodes = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 1_000_000 })));
    try {
      const user = makeUser();
      await nodes[0]!.createUser(user);
      for (const n of nodes) assert.equal((await n.userById(user.id))?.username, user.username);
      const client = new pg.Client({ connectionString: DATABASE_URL });
      await client.connect();
      const meta = (await client.query(`SELECT key, value FROM ${schema}.meta ORDER BY key`)).rows;
      await client.end();
      assert.deepEqual(meta, [{ key: 'app', value: 'buildlog' }, { key: 'schema', value: String(SCHEMA_VERSION) }]);
    } finally {
      for (const n of nodes) await n.close();
      await dropSchema(schema);
    }
  });

  test('appends to one log from three nodes at once never interleave inside an append and none is lost', async () => {
    const schema = freshSchema();
    const nodes = await Promise.all([1, 2, 3].map(() => PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 10_000_000 })));
    try {
      const job = makeJob();
      await nodes[0]!.createJob(job);
      const appends = nodes.flatMap((n, i) =>
        Array.from({ length: 60 }, (_, k) => n.append(job.id, Buffer.from(`<node ${i} append ${k} ${'x'.repeat(k * 37)}>\n`))),
      );
      const results = await Promise.all(appends);
      assert.ok(results.every((r) => r.kind === 'appended'));
      const info = (await nodes[1]!.logInfo(job.id))!;
      const log = (await nodes[2]!.readLog(job.id, 0, info.length))!.data.toString();
      const lines = log.split('\n').filter(Boolean);
      assert.equal(lines.length, 180);
      for (const line of lines) assert.match(line, /^<node \d append \d+ x*>$/);
      assert.deepEqual(new Set(lines).size, 180);
      // Each append landed where its result says.
      for (const [i, r] of results.entries()) {
        if (r.kind !== 'appended') continue;
        const n = Math.floor(i / 60);
        const k = i % 60;
        assert.equal(log.slice(r.start, r.end), `<node ${n} append ${k} ${'x'.repeat(k * 37)}>\n`);
      }
    } finally {
      for (const n of nodes) await n.close();
      await dropSchema(schema);
    }
  });

  test('X-Log-Offset appends racing from two nodes: exactly one wins each offset, the other is told the length', async () => {
    const schema = freshSchema();
    const [a, b] = await Promise.all([1, 2].map(() => PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 10_000_000 })));
    try {
      const job = makeJob();
      await a!.createJob(job);
      let offset = 0;
      for (let round = 0; round < 20; round++) {
        const [ra, rb] = await Promise.all([a!.append(job.id, Buffer.from(`a${round}\n`), offset), b!.append(job.id, Buffer.from(`b${round}\n`), offset)]);
        const kinds = [ra!.kind, rb!.kind].sort();
        assert.deepEqual(kinds, ['appended', 'offset-mismatch']);
        offset = (await a!.logInfo(job.id))!.length;
      }
      const log = (await b!.readLog(job.id, 0, offset))!.data.toString();
      assert.equal(log.split('\n').filter(Boolean).length, 20);
    } finally {
      await a!.close();
      await b!.close();
      await dropSchema(schema);
    }
  });

  test('a version 1 schema is migrated: an ABORTING job counts its grace period from its last activity; its logs are found, then indexed', async () => {
    const schema = freshSchema();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      const store = await PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 1000 });
      const job = makeJob({ kind: 'run', userId: 'migrated000000001' });
      await store.createJob(job);
      await store.append(job.id, Buffer.from('written by version 1\n'));
      await store.updateJobStatus(job.id, 'RUNNING', { status: 'ABORTING' });
      await store.close();
      // What version 1 had: no status times (2), no search index (3).
      await client.query(`SET search_path = ${schema}; DROP INDEX jobs_aborting; ALTER TABLE jobs DROP COLUMN status_at;
        DROP TABLE search_blocks; DROP INDEX jobs_unindexed; ALTER TABLE jobs DROP COLUMN search_to, DROP COLUMN search_line;
        UPDATE jobs SET active_at = 5000; UPDATE meta SET value = '1' WHERE key = 'schema'`);
      const upgraded = await PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 1000, indexLogs: true });
      try {
        assert.deepEqual(await upgraded.abortingSince(5000, 10), []);
        assert.deepEqual((await upgraded.abortingSince(5001, 10)).map((j) => j.id), [job.id]);
        const query = { userId: job.userId, text: 'by version', offset: 0, limit: 10, linesPerJob: 5 };
        assert.deepEqual((await upgraded.searchLogs(query)).hits.map((h) => h.lines), [[{ line: 1, offset: 0, text: 'written by version 1' }]]);
        await waitFor(async () => Number((await client.query('SELECT search_to FROM jobs')).rows[0].search_to) === 21, 10_000, 'the old log indexed');
        assert.deepEqual((await upgraded.searchLogs(query)).hits.map((h) => h.lines), [[{ line: 1, offset: 0, text: 'written by version 1' }]]);
      } finally {
        await upgraded.close();
      }
      assert.equal((await client.query(`SELECT value FROM meta WHERE key = 'schema'`)).rows[0].value, String(SCHEMA_VERSION));
    } finally {
      await client.end();
      await dropSchema(schema);
    }
  });

  test('a schema of another application is refused untouched; a bad URL is a clear error', async () => {
    const schema = freshSchema();
    const client = new pg.Client({ connectionString: DATABASE_URL });
    await client.connect();
    try {
      await client.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.orders (id int)`);
      await assert.rejects(PostgresStore.open({ url: DATABASE_URL, schema, retentionChars: 1000 }), (err: Error) => {
        assert.ok(err instanceof StoreOpenError);
        assert.match(err.message, /another application/);
        return true;
      });
      const tables = (await client.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema])).rows;
      assert.deepEqual(tables.map((t) => t.table_name), ['orders']);
    } finally {
      await client.query(`DROP SCHEMA ${schema} CASCADE`);
      await client.end();
    }
    await assert.rejects(PostgresStore.open({ url: 'postgres://postgres@127.0.0.1:1/test', retentionChars: 1000 }), (err: Error) => {
      assert.ok(err instanceof StoreOpenError);
      assert.match(err.message, /cannot be used: .*ECONNREFUSED/);
      return true;
    });
  });
});
