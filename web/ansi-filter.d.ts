// Types of ansi-filter.js for the server and the TypeScript tests (the page uses the .js as it is).
export const MAX_SEQUENCE_BODY: number;

export class AnsiFilter<Bytes extends Uint8Array = Uint8Array> {
  constructor(alloc?: (size: number) => Bytes);
  readonly ground: boolean;
  push(chunk: Bytes): Bytes;
  end(): Bytes;
}
