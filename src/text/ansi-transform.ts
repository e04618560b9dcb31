import { Transform } from 'node:stream';
import { AnsiFilter } from './ansi-filter.js';

/** The streaming ANSI filter as a Transform for response pipelines; unchanged chunks pass through uncopied. */
export function ansiStripStream(): Transform {
  const filter = new AnsiFilter();
  return new Transform({
    transform(chunk: Buffer, _enc, callback) {
      const out = filter.push(chunk);
      callback(null, out.length ? out : undefined);
    },
    flush(callback) {
      const out = filter.end();
      callback(null, out.length ? out : undefined);
    },
  });
}
