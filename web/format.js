// @ts-check
/** Times and durations as the pages (viewer and dashboard) show them. */

/** @param {string | null} iso */
export function formatTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** @param {number} ms */
export function formatDuration(ms) {
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h} h ${String(m).padStart(2, '0')} min` : `${m} min ${sec} s`;
}

/**
 * A line's timestamp (ISO-8601 UTC, as `buildlog run` logs it) as the viewer shows it: 'utc' as logged,
 * 'local' in the browser's time zone, 'elapsed' as the time since `startMs` (the job's start).
 * @param {string} iso
 * @param {'utc' | 'local' | 'elapsed'} mode
 * @param {number | null} startMs
 */
export function formatStamp(iso, mode, startMs) {
  const ms = Date.parse(iso);
  if (mode === 'utc' || Number.isNaN(ms) || (mode === 'elapsed' && startMs === null)) return iso;
  const p = (/** @type {number} */ n, width = 2) => String(n).padStart(width, '0');
  if (mode === 'local') return `${formatTime(iso)}.${p(new Date(ms).getMilliseconds(), 3)}`;
  const diff = ms - /** @type {number} */ (startMs);
  const abs = Math.abs(diff);
  const s = Math.floor(abs / 1000);
  return `${diff < 0 ? '-' : '+'}${p(Math.floor(s / 3600))}:${p(Math.floor((s % 3600) / 60))}:${p(s % 60)}.${p(abs % 1000, 3)}`;
}
