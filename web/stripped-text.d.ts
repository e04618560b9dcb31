// Types of stripped-text.js for the TypeScript tests (the page uses the .js as it is).
export function withoutMarkers(line: string): string | null;
export function displayText(text: string): { plain: string; styled: string };
export function withoutEscapes(text: string): string;
