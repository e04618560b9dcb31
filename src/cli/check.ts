import { existsSync } from 'node:fs';
import { DEFAULT_RETENTION_CHARS } from '../core/retention.js';
import { databaseFile, SqliteStore } from '../store/sqlite.js';

/**
 * `buildlog check --data DIR`: SQLite's full integrity check, every row's checksum, every packed row
 * inflated, every log's stored length. Exit 0: nothing damaged; 1: damaged (each finding on stderr);
 * 2: there is no database to check.
 */
export async function check(options: { data?: string }): Promise<void> {
  const dataDir = options.data ?? process.env.BUILDLOG_DATA ?? './data';
  const file = databaseFile(dataDir);
  if (!existsSync(file)) {
    process.stderr.write(`buildlog check: there is no ${file}\n`);
    process.exit(2);
  }
  let problems: string[];
  let store: SqliteStore | undefined;
  try {
    store = new SqliteStore({ dataDir, retentionChars: DEFAULT_RETENTION_CHARS, background: false });
    problems = await store.verify('full');
  } catch (err) {
    problems = [(err as Error).message];
  } finally {
    await store?.close();
  }
  if (problems.length) {
    process.stderr.write(`buildlog check: ${file} is damaged:\n${problems.map((p) => `  ${p}\n`).join('')}`);
    process.exit(1);
  }
  process.stdout.write(`${file}: ok (database structure, every log's stored length and checksums)\n`);
}
