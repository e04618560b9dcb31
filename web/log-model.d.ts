// Types of log-model.js for the TypeScript tests (the page itself uses the .js as it is).
export const TIMESTAMP_RE: RegExp;
export function stateAfter(before: string, text: string): string;
export function displayParts(line: string): { ts: string; plain: string; styled: string };
export function plainText(line: string, withTs?: boolean | ((ts: string) => string)): string;

export class LogModel {
  lines: string[];
  partial: string;
  tailState: string;
  chars: number;
  partialVersion: number;
  readonly lineCount: number;
  line(i: number): string;
  append(text: string): number;
  appendNotice(text: string): void;
  stateAt(i: number): string;
}

export class LogSearch {
  constructor(model: LogModel);
  query: string;
  matchLines: number[];
  readonly count: number;
  setQuery(query: string, withTs: boolean | ((ts: string) => string)): boolean;
  update(): void;
  match(k: number): { line: number; nth: number };
  firstAtOrAfter(i: number): number;
}
