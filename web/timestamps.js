// @ts-check
/**
 * How the viewer shows the timestamps that start log lines: in UTC as logged, in local time, as the
 * time since the job started, or not at all; the choice is remembered in the browser.
 */
import { formatStamp } from './format.js';

const KEY = 'buildlog.viewer.timestamps';
/** @typedef {'utc' | 'local' | 'elapsed' | 'off'} TimestampMode */
const MODES = ['utc', 'local', 'elapsed', 'off'];

/** @param {string | null} mode @returns {TimestampMode} */
export function timestampMode(mode) {
  return /** @type {TimestampMode} */ (mode !== null && MODES.includes(mode) ? mode : 'utc');
}

/** The mode kept in this browser ('0' and '1': hidden and shown, as the earlier checkbox kept it). */
export function keptTimestampMode() {
  try {
    const kept = localStorage.getItem(KEY);
    return timestampMode(kept === '0' ? 'off' : kept);
  } catch {
    return timestampMode(null);
  }
}

/** @param {TimestampMode} mode */
export function keepTimestampMode(mode) {
  try {
    localStorage.setItem(KEY, mode);
  } catch {
    // not kept then
  }
}

/**
 * The formatter of a line's timestamp (as it stands in the line: with its trailing space) for a mode;
 * null: shown as logged, or hidden.
 * @param {TimestampMode} mode
 * @param {number | null} startMs the job's start
 * @returns {((ts: string) => string) | null}
 */
export function timestampFormatter(mode, startMs) {
  if (mode !== 'local' && (mode !== 'elapsed' || startMs === null)) return null;
  return (ts) => `${formatStamp(ts.slice(0, -1), mode, startMs)} `;
}
