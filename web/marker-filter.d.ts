// Types of marker-filter.js for the server and the TypeScript tests (the page uses the .js as it is).
export const GITLAB_MARKER: string;

export class MarkerFilter {
  readonly idle: boolean;
  readonly atLineStart: boolean;
  passedLines(): void;
  /** `text`: bytes, one char each (latin1). */
  push(text: string): string;
  end(): string;
}
