// @ts-check
/**
 * Section markers in one line of the log as the viewer holds it (decoded text, without its `\n`):
 *
 *   GitLab:          `section_start:<unix seconds>:<name>[collapsed=true]\r\e[0K<header text>`
 *                    … `section_end:<unix seconds>:<name>\r\e[0K` (anywhere in a line)
 *   GitHub Actions:  a line `::group::<title>` … a line `::endgroup::` (after an optional line timestamp)
 *
 * The same patterns as the server's src/text/sections.ts, which finds them in raw bytes for
 * `GET …/sections` (test/viewer-sections.test.ts checks that both find the same sections). The page
 * cannot import that TypeScript module (no build step), and reading the sections from the endpoint
 * instead would mean asking again for every line that arrives live.
 *
 * Plain JavaScript without DOM use, so that the Node tests import it as it is.
 */

/** A GitLab marker (kind, unix seconds, name, options) with the erase code after it. */
const GITLAB_RE = /section_(start|end):(\d{1,12}):([A-Za-z0-9_.-]{1,100})(?:\[([^\]\r\n]{0,200})\])?\r(?:\x1b\[0?K)?/g;
/** A whole GitHub command line: optional line timestamp, ANSI codes, the command, the title. */
const GITHUB_RE = /^(?:(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?Z) )?(?:\x1b\[[0-9;]*[A-Za-z])*::(group|endgroup)::([^\r\n]*?)\r?$/;
/** A GitHub command at the start of a line's body (after its timestamp), for the display. */
const GITHUB_COMMAND_RE = /^((?:\x1b\[[0-9;]*[A-Za-z])*)::(group|endgroup)::/;
const COLLAPSED_RE = /(?:^|,)\s*collapsed\s*=\s*true\s*(?:,|$)/;
/** ANSI sequences and control characters, as the server takes them out of titles. */
const NOISE_RE = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|[\x00-\x08\x0b-\x1f\x7f]/g;

/** @param {string} text */
const plainTitle = (text) => text.replace(NOISE_RE, '').trim();

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

/**
 * A line's body (after its timestamp) without marker syntax, as the stripped view shows it: a GitLab
 * marker goes, a `::group::` line keeps its title; null for a `::endgroup::` line, which goes whole
 * (its timestamp too).
 * @param {string} body
 * @returns {string | null}
 */
export function withoutMarkers(body) {
  if (body.indexOf('::') !== -1) {
    const m = GITHUB_COMMAND_RE.exec(body);
    if (m) return m[2] === 'endgroup' ? null : m[1] + body.slice(m[0].length);
  }
  return body.indexOf('section_') === -1 ? body : body.replace(GITLAB_RE, '');
}
