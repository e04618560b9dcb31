/**
 * The streaming ANSI / ECMA-48 escape-sequence and control-character filter of the stripped view, on
 * Buffers. The grammar itself is web/ansi-filter.js, one module for the server and the log viewer
 * (the page loads it as it is): its header says what goes and what stays.
 */
import { AnsiFilter as Grammar, MAX_SEQUENCE_BODY } from '../../web/ansi-filter.js';

export { MAX_SEQUENCE_BODY };

const allocUnsafe = (size: number): Buffer => Buffer.allocUnsafe(size);

export class AnsiFilter extends Grammar<Buffer> {
  constructor() {
    super(allocUnsafe);
  }
}

/** One-shot convenience: filters a complete buffer. */
export function stripAnsi(buf: Buffer): Buffer {
  const filter = new AnsiFilter();
  const body = filter.push(buf);
  const tail = filter.end();
  return tail.length === 0 ? body : Buffer.concat([body, tail]);
}
