import type pg from 'pg';

/** Bytes [from, to) of a log from its rows (the caller keeps the range inside the log's window). */
export async function readRange(c: pg.PoolClient | pg.Pool, jobId: string, from: number, to: number): Promise<Buffer> {
  if (from >= to) return Buffer.alloc(0);
  const rows = (
    await c.query<{ offset: number; data: Buffer }>(
      `SELECT "offset", data FROM chunks WHERE job_id = $1 AND "offset" < $3 AND "offset" + length(data) > $2 ORDER BY "offset"`,
      [jobId, from, to],
    )
  ).rows;
  const parts = rows.map((r) => r.data.subarray(Math.max(0, from - r.offset), Math.min(r.data.length, to - r.offset)));
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
