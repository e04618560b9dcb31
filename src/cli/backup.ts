import { backupDataDir } from '../ops/backup.js';

/** `buildlog backup --data DIR OUT`: a consistent copy of DIR's database into the data dir OUT, also while a server runs. */
export async function backup(out: string, options: { data?: string }): Promise<void> {
  const dataDir = options.data ?? process.env.BUILDLOG_DATA ?? './data';
  const started = Date.now();
  const result = await backupDataDir(dataDir, out);
  process.stderr.write(
    `Backed up ${dataDir} to ${result.file} (${result.bytes} bytes, ${Date.now() - started} ms). ` +
      `Serve it with: buildlog serve --data ${out}\n`,
  );
}
