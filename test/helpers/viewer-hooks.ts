// The viewer page's test hooks (window.buildlogViewer, web/viewer.js), for the browser tests.

export interface ViewerHooks {
  metrics: { firstScreenMs: number | null; backlogBytes: number; bytes: number; reconnects: number; requests: number };
  lineCount: number;
  following: boolean;
  streamDone: boolean;
  renderedRows: number;
  line(i: number): string;
  /** The sections found: name, header line and end line (0-based), folded. */
  sections: { name: string; line: number; endLine: number | null; folded: boolean }[];
}

declare global {
  interface Window {
    buildlogViewer: ViewerHooks;
    __pwned?: unknown;
  }
}
