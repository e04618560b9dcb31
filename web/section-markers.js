// @ts-check
/**
 * Section markers in one line of the log as the viewer holds it (decoded text, without its `\n`):
 *
 *   GitLab:          `section_start:<unix seconds>:<name>[collapsed=true]\r\e[0K<header text>`
 *                    … `section_end:<unix seconds>:<name>\r\e[0K` (anywhere in a line)
 *   GitHub Actions:  a line `::group::<title>` … a line `::endgroup::` (after an optional line timestamp)
 *
 * The same patterns as the server's src/text/sections.ts, which finds them in raw bytes for
 * `GET …/sections` (test/viewer-sections.test.ts checks that both find the same sections): the GitLab
 * one and the stripping of titles are the very code the server runs (marker-filter.js,
 * stripped-text.js). Reading the sections from the endpoint instead would mean asking again for every
 * line that arrives live.
 *
 * Plain JavaScript without DOM use, so that the Node tests import it as it is.
 */
import { GITLAB_MARKER } from './marker-filter.js';
import { withoutEscapes } from './stripped-text.js';

/** A GitLab marker (kind, unix seconds, name, options) with the erase code after it. */
const GITLAB_RE = new RegExp(GITLAB_MARKER, 'g');
/** A whole GitHub command line: optional line timestamp, ANSI codes, the command, the title. */
const GITHUB_RE = /^(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) )?(?:\x1b\[[0-9;]*[A-Za-z])*::(group|endgroup)::([^\r\n]*?)\r?$/;
const COLLAPSED_RE = /(?:^|,)\s*collapsed\s*=\s*true\s*(?:,|$)/;
/** A title as the server makes it: the stripped text, trimmed. @param {string} text */
const plainTitle = (text) => withoutEscapes(text).trim();

/**
 * @typedef {{ kind: 'start', syntax: 'gitlab' | 'github', name: string, title: string, collapsed: boolean, at: number | null }
 *   | { kind: 'end', syntax: 'gitlab' | 'github', name: string, at: number | null }} Marker
 *   `at`: epoch milliseconds, from the marker (GitLab) or the line's timestamp (GitHub); null if unknown
 */

/**
 * The markers of one line, in order (a line holds one GitHub command, or any number of GitLab markers).
 * @param {string} line
 * @returns {Marker[]}
 */
export function lineMarkers(line) {
  const gitlab = line.indexOf('section_') !== -1;
  if (!gitlab && line.indexOf('::') === -1) return [];
  const github = GITHUB_RE.exec(line);
  if (github) {
    const at = github[1] ? Date.parse(github[1]) : null;
    if (github[2] === 'endgroup') return [{ kind: 'end', syntax: 'github', name: '', at }];
    const title = plainTitle(github[3]);
    return [{ kind: 'start', syntax: 'github', name: title, title, collapsed: false, at }];
  }
  if (!gitlab) return [];
  /** @type {Marker[]} */
  const found = [];
  GITLAB_RE.lastIndex = 0;
  for (let m = GITLAB_RE.exec(line); m; m = GITLAB_RE.exec(line)) {
    const at = Number(m[2]) * 1000;
    const name = m[3];
    if (m[1] === 'end') {
      found.push({ kind: 'end', syntax: 'gitlab', name, at });
      continue;
    }
    // The header runs to the next marker (or anything that looks like one), as on the server.
    const next = line.indexOf('section_', GITLAB_RE.lastIndex);
    const title = plainTitle(line.slice(GITLAB_RE.lastIndex, next === -1 ? undefined : next)) || name;
    found.push({ kind: 'start', syntax: 'gitlab', name, title, collapsed: COLLAPSED_RE.test(m[4] ?? ''), at });
  }
  return found;
}
