/** A single byte range of `Range: bytes=...`, in absolute log offsets. */
export type ByteRange = { from: number; to?: number } | { suffix: number };

/**
 * Parses `bytes=N-`, `bytes=N-M` and `bytes=-K`. Anything else (other units, several ranges, numbers past
 * 15 digits, garbage) is ignored, as RFC 9110 allows, and the whole log is served.
 */
export function parseRange(header: string | undefined): ByteRange | null {
  if (!header) return null;
  const m = /^\s*bytes\s*=\s*(\d{0,15})\s*-\s*(\d{0,15})\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const from = Number(m[1]);
  if (m[2] === '') return { from };
  const last = Number(m[2]);
  return last >= from ? { from, to: last + 1 } : null;
}

/** `If-None-Match` contains this ETag (or `*`). */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((t) => {
    const v = t.trim().replace(/^W\//, '');
    return v === '*' || v === etag;
  });
}

/** The response coding we use for `Accept-Encoding`: gzip first (cheap to flush per write), then br. */
export function pickEncoding(header: string | undefined): 'gzip' | 'br' | null {
  if (!header) return null;
  const accepted = new Map<string, number>();
  for (const part of header.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)).find(Boolean);
    accepted.set(name!.trim(), q ? Number(q[1]) : 1);
  }
  const ok = (name: string) => (accepted.get(name) ?? (accepted.get('*') ?? 0)) > 0;
  if (ok('gzip')) return 'gzip';
  if (ok('br')) return 'br';
  return null;
}
