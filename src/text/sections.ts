/**
 * Collapsible sections in build output, recognised in the raw bytes as they are appended:
 *
 *   GitLab:          `section_start:<unix seconds>:<name>[collapsed=true]\r\e[0K<header text>`
 *                    … `section_end:<unix seconds>:<name>\r\e[0K` (anywhere in a line)
 *   GitHub Actions:  a line `::group::<title>` … a line `::endgroup::` (after an optional line timestamp)
 *
 * Sections nest. Hand-written: it is a few patterns per line, and it has to follow a log chunk by chunk
 * with absolute offsets, which no log-parsing library does.
 */

import { stripAnsi } from './ansi-filter.js';
import { GITLAB_MARKER } from './section-markers.js';

export interface Section {
  name: string;
  title: string;
  /** 0 for a section that is not inside another. */
  depth: number;
  /** Absolute offset of the first byte of the start marker's line (GitHub) or of the marker (GitLab). */
  start: number;
  /** Absolute offset just after the end marker (its line, for GitHub); null while open. */
  end: number | null;
  /** Epoch milliseconds, from the marker (GitLab) or the line's timestamp (GitHub); null if unknown. */
  startedAt: number | null;
  finishedAt: number | null;
  collapsed: boolean;
}

/** Lines longer than this are only looked at up to here (a marker is at most a few hundred bytes in). */
const MAX_LINE = 64 * 1024;
const GITLAB = new RegExp(GITLAB_MARKER, 'g');
/** What may stand before a GitHub command on its line: `buildlog run`'s line timestamp, then ANSI codes. */
export const LINE_LEAD = '(?:(\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d{1,9})?Z) )?(?:\\x1b\\[[0-9;]*[A-Za-z])*';
const GITHUB = new RegExp(`^${LINE_LEAD}::(group|endgroup)::(.*?)\\r?$`);
/** A title: the header's bytes (latin1) as the stripped view has them, decoded and trimmed. */
const plain = (bytes: string) => stripAnsi(Buffer.from(bytes, 'latin1')).toString().trim();

/** A section and the syntax that opened it (a GitHub `::endgroup::` closes only a group). */
interface Tracked extends Section {
  kind: 'gitlab' | 'github';
}

/** Follows one log's raw bytes and keeps the list of its sections. */
export class SectionTracker {
  readonly #sections: Tracked[] = [];
  /** Indexes into #sections of the open ones, outermost first. */
  readonly #open: number[] = [];
  /** The current line's bytes so far (up to MAX_LINE) and the offset of its first byte. */
  #line: Buffer[] = [];
  #lineBytes = 0;
  #lineStart: number;
  #offset: number;

  /** `offset`: the absolute offset of the first byte that will be pushed. */
  constructor(offset = 0) {
    this.#lineStart = this.#offset = offset;
  }

  /** Absolute offset after the last pushed byte. */
  get offset(): number {
    return this.#offset;
  }

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      const lf = chunk.indexOf(0x0a, at);
      const end = lf === -1 ? chunk.length : lf + 1;
      this.#keep(chunk.subarray(at, end));
      this.#offset += end - at;
      if (lf === -1) break;
      this.#endLine(this.#offset);
      at = end;
    }
  }

  /**
   * The sections so far: a copy, with the unfinished last line taken into account as it stands (a
   * marker whose line has not ended yet is seen), without changing what later pushes find.
   */
  sections(): Section[] {
    const copy = new SectionTracker();
    copy.#sections.push(...this.#sections.map((s) => ({ ...s })));
    copy.#open.push(...this.#open);
    if (this.#lineBytes > 0) copy.#scan(Buffer.concat(this.#line).toString('latin1'), this.#lineStart, this.#offset);
    return copy.#sections.map(({ kind: _kind, ...section }) => section);
  }

  #keep(part: Buffer): void {
    if (this.#lineBytes >= MAX_LINE) return;
    const room = MAX_LINE - this.#lineBytes;
    // Copied: the caller may reuse its buffer.
    const kept = Buffer.from(part.length > room ? part.subarray(0, room) : part);
    this.#line.push(kept);
    this.#lineBytes += kept.length;
  }

  #endLine(next: number): void {
    const text = Buffer.concat(this.#line).toString('latin1');
    this.#scan(text, this.#lineStart, next);
    this.#line = [];
    this.#lineBytes = 0;
    this.#lineStart = next;
  }

  /** Finds the markers in one line (latin1: one char per byte, so string indexes are byte offsets). */
  #scan(line: string, lineStart: number, lineEnd: number): void {
    const github = GITHUB.exec(line.endsWith('\n') ? line.slice(0, -1) : line);
    if (github) {
      const at = github[1] ? Date.parse(github[1]) : null;
      if (github[2] === 'group') {
        const title = plain(github[3]!);
        this.#startSection({ kind: 'github', name: title, title, collapsed: false, start: lineStart, startedAt: at });
      } else {
        this.#endSection((s) => s.kind === 'github', lineEnd, at);
      }
      return;
    }
    if (!line.includes('section_')) return;
    GITLAB.lastIndex = 0;
    for (let m = GITLAB.exec(line); m; m = GITLAB.exec(line)) {
      const at = Number(m[2]) * 1000;
      const name = m[3]!;
      if (m[1] === 'start') {
        const next = line.indexOf('section_', GITLAB.lastIndex);
        const header = line.slice(GITLAB.lastIndex, next === -1 ? undefined : next);
        const title = plain(header) || name;
        const collapsed = /(?:^|,)\s*collapsed\s*=\s*true\s*(?:,|$)/.test(m[4] ?? '');
        this.#startSection({ kind: 'gitlab', name, title, collapsed, start: lineStart + m.index, startedAt: at });
      } else {
        this.#endSection((s) => s.kind === 'gitlab' && s.name === name, lineStart + GITLAB.lastIndex, at);
      }
    }
  }

  #startSection(s: Pick<Tracked, 'kind' | 'name' | 'title' | 'collapsed' | 'start' | 'startedAt'>): void {
    this.#sections.push({ ...s, depth: this.#open.length, end: null, finishedAt: null });
    this.#open.push(this.#sections.length - 1);
  }

  /** Closes the innermost open section that `matches`, and every section opened inside it. */
  #endSection(matches: (s: Tracked) => boolean, end: number, at: number | null): void {
    for (let i = this.#open.length - 1; i >= 0; i--) {
      if (!matches(this.#sections[this.#open[i]!]!)) continue;
      for (const index of this.#open.splice(i)) {
        const section = this.#sections[index]!;
        section.end = end;
        section.finishedAt = at;
      }
      return;
    }
  }
}

/** The wire form of a section: timestamps as ISO strings and the duration when both ends are known. */
export function sectionToWire(s: Section) {
  return {
    name: s.name,
    title: s.title,
    depth: s.depth,
    start: s.start,
    end: s.end,
    startedAt: s.startedAt === null ? null : new Date(s.startedAt).toISOString(),
    finishedAt: s.finishedAt === null ? null : new Date(s.finishedAt).toISOString(),
    durationMillis: s.startedAt !== null && s.finishedAt !== null ? s.finishedAt - s.startedAt : null,
    collapsed: s.collapsed,
  };
}
