import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import { databaseFile } from '../store/sqlite.js';
import { StoreOpenError } from '../store/errors.js';

export interface BackupResult {
  file: string;
  bytes: number;
}

/**
 * A consistent copy of a data dir's database while a server may be writing it, with SQLite's online
 * backup: all pages are copied in one step, inside one read transaction, so the copy is the database as
 * of one commit (every append acknowledged before the backup began is in it). In WAL mode the writers
 * are not held up meanwhile. The copy is written beside its final name and renamed when complete, and
 * checked before it is kept.
 */
export async function backupDataDir(dataDir: string, outDir: string): Promise<BackupResult> {
  const source = databaseFile(dataDir);
  if (!existsSync(source)) throw new StoreOpenError(`${source} does not exist; nothing to back up`);
  mkdirSync(outDir, { recursive: true });
  const target = databaseFile(outDir);
  if (existsSync(target)) throw new StoreOpenError(`${target} exists already; back up into an empty directory`);
  const partial = `${target}.partial`;
  rmSync(partial, { force: true });
  const db = new Database(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // The first step copies nothing (better-sqlite3 starts with 0 pages); the second copies every page at once.
    await db.backup(partial, { progress: () => 0x7fffffff });
  } catch (err) {
    rmSync(partial, { force: true });
    throw new StoreOpenError(`backup of ${source} failed: ${(err as Error).message}`);
  } finally {
    db.close();
  }
  const copy = new Database(partial, { fileMustExist: true });
  let bytes: number;
  try {
    const check = copy.pragma('quick_check', { simple: true });
    if (check !== 'ok') throw new StoreOpenError(`the backup of ${source} does not check out (${String(check)}); nothing was kept`);
    // A self-contained file: no WAL beside it to copy along.
    copy.pragma('journal_mode = DELETE');
    bytes = (copy.pragma('page_count', { simple: true }) as number) * (copy.pragma('page_size', { simple: true }) as number);
  } catch (err) {
    copy.close();
    rmSync(partial, { force: true });
    throw err;
  }
  copy.close();
  renameSync(partial, target);
  return { file: target, bytes };
}
