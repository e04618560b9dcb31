// Types of sections.js for the TypeScript tests (the page itself uses the .js as it is).
export interface Section {
  name: string;
  title: string;
  depth: number;
  syntax: 'gitlab' | 'github';
  line: number;
  endLine: number | null;
  endHidden: boolean;
  startedAt: number | null;
  finishedAt: number | null;
  collapsed: boolean;
  folded: boolean;
  parent: Section | null;
}

export class Sections {
  list: Section[];
  open: Section[];
  headers: Map<number, Section>;
  endOnly: number[];
  version: number;
  update(model: { lines: string[] }): void;
  rowCount(n: number): number;
  lineAt(row: number): number;
  rowOf(line: number): number;
  toggle(s: Section): void;
  unfold(s: Section): void;
  reveal(line: number): void;
  byName(name: string): Section | null;
  innermostOpen(): Section | null;
}

export function sectionFromHash(hash: string): string | null;
export function sectionHash(s: Section): string;
