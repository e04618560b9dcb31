// @ts-check
/**
 * The stripped view of the lines the viewer holds, made by the server's own code: marker-filter.js, then
 * ansi-filter.js over the line's UTF-8 bytes, as a read without `raw=1` makes it. So the page shows and
 * searches what that read holds, byte for byte once decoded (test/viewer-stripped-text.test.ts). The one
 * difference is in logs that are not valid UTF-8: the page decodes before it strips, so where removing
 * a sequence would join the bytes of a broken character on the server, the page has U+FFFD.
 *
 * Line by line: the stripped view of a log is the stripped views of its lines, since every escape
 * sequence ends at a newline and a marker lies within one line.
 *
 * Plain JavaScript without DOM use, so that the Node tests import it as it is.
 */
import { AnsiFilter } from './ansi-filter.js';
import { MarkerFilter } from './marker-filter.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

const ASCII = /^[\x00-\x7f]*$/;
/** Every sequence the ANSI filter removes starts with one of these: C0 controls but tab and newline, DEL, C1. */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/;

/**
 * What the page renders in style: SGR sequences (colours, bold, ...) and OSC 8 hyperlinks to http(s)
 * addresses around printable text, in the forms ansi_up renders. The filter removes each of them whole
 * (every ESC starts a sequence, and these are complete within its bounds), so keeping them for ansi_up
 * changes nothing in the text: a link keeps its text (group 2), and the rest between them is stripped.
 */
const STYLE_RE = /\x1b\[[\d;]{0,4000}m|\x1b\]8;[\x20-\x3a\x3c-\x7e]{0,1000};https?:\/\/[\x21-\x7e]{1,500}(?:\x07|\x1b\\)([\x20-\x7e]+)\x1b\]8;;(?:\x07|\x1b\\)/g;

/**
 * A line (without its `\n`) without section marker syntax, escape sequences still in; null when the
 * stripped view drops the whole line (a `::endgroup::` line).
 * @param {string} line
 * @returns {string | null}
 */
export function withoutMarkers(line) {
  if (line.indexOf('::') === -1 && line.indexOf('section_') === -1) return line;
  // An ASCII line's chars are its bytes (lines with `::` are common: `std::io`, `Foo::bar`).
  const ascii = ASCII.test(line);
  const filter = new MarkerFilter();
  // With its newline, as in the log: whether the newline stays says whether the line does.
  const out = filter.push(`${ascii ? line : toByteString(encoder.encode(line))}\n`) + filter.end();
  if (!out.endsWith('\n')) return null;
  return ascii ? out.slice(0, -1) : decoder.decode(fromByteString(out.slice(0, -1)));
}

/**
 * A line's text (markers already gone, see withoutMarkers) as the page shows it: `plain` the stripped
 * text, `styled` the same with the sequences ansi_up renders in style (STYLE_RE) in place.
 * @param {string} text
 * @returns {{ plain: string, styled: string }}
 */
export function displayText(text) {
  if (!CONTROL.test(text)) return { plain: text, styled: text };
  let plain = '';
  let styled = '';
  let at = 0;
  STYLE_RE.lastIndex = 0;
  for (let m = STYLE_RE.exec(text); m !== null; m = STYLE_RE.exec(text)) {
    const between = withoutEscapes(text.slice(at, m.index));
    plain += between + (m[1] ?? '');
    styled += between + m[0];
    at = STYLE_RE.lastIndex;
  }
  const rest = withoutEscapes(text.slice(at));
  return { plain: plain + rest, styled: styled + rest };
}

/** Text with what the ANSI filter removes removed (escape sequences, control characters). @param {string} text */
export function withoutEscapes(text) {
  if (!CONTROL.test(text)) return text;
  const filter = new AnsiFilter();
  const body = filter.push(encoder.encode(text));
  return decoder.decode(body, { stream: true }) + decoder.decode(filter.end());
}

/** Bytes as a string of one char each (latin1), as marker-filter.js takes them. @param {Uint8Array} bytes */
function toByteString(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** @param {string} s */
function fromByteString(s) {
  const bytes = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) bytes[i] = s.charCodeAt(i);
  return bytes;
}
