// @ts-check
/**
 * Streaming ANSI / ECMA-48 escape-sequence and control-character filter.
 *
 * ONE grammar for the server and the log viewer: the server's stripped view
 * (`raw` off, src/text/ansi-filter.ts wraps this for Buffers) and the viewer's
 * text and search (web/stripped-text.js) both run this module, so the two can
 * never disagree about what is text. It lives in web/ because the page loads it
 * as it is (plain ES module, no build step, no Node APIs), and src/ and dist/
 * both reach it at ../../web/ (the npm package ships web/).
 *
 * Hand-written on purpose (no library): this is part of the product's core and
 * runs on every non-raw log read, so it has to be a single pass over the bytes,
 * chunk-boundary independent, and allocation-light.
 *
 * It works on raw UTF-8 bytes and never decodes. It removes:
 *   - CSI sequences: `ESC [` or 8-bit C1 CSI (U+009B, bytes C2 9B), then
 *     parameter bytes 0x30–0x3F, intermediate bytes 0x20–0x2F and one final
 *     byte 0x40–0x7E (grammar P* I* F).
 *   - OSC strings: `ESC ]` or C1 OSC (C2 9D) … terminated by BEL (0x07), by
 *     ST = `ESC \`, or by C1 ST (C2 9C).
 *   - DCS / SOS / PM / APC strings: `ESC P`, `ESC X`, `ESC ^`, `ESC _` or their
 *     C1 forms (C2 90, C2 98, C2 9E, C2 9F) … terminated by ST (`ESC \` or C2 9C).
 *     BEL does NOT terminate these (it is part of the string body).
 *   - nF escapes: ESC, intermediates 0x20–0x2F, final 0x30–0x7E (e.g. `ESC ( B`).
 *   - Two-byte Fp/Fe/Fs escapes: ESC + 0x30–0x7E (e.g. `ESC 7`, `ESC c`, `ESC M`).
 *   - Every other C1 control as encoded in UTF-8 (C2 80 – C2 9F).
 *   - Every C0 control 0x00–0x1F except LF (0x0A) and TAB (0x09) — so CR is
 *     removed — and DEL (0x7F).
 * Everything else (printable ASCII, valid or invalid UTF-8 multibyte sequences,
 * lone continuation bytes, …) passes through byte-exact.
 *
 * Robustness rules (so that a broken or never-terminated sequence cannot eat the
 * rest of a log):
 *   1. ESC followed by a byte that cannot continue an escape (C0 control, DEL or
 *      a byte >= 0x80) drops the ESC only; that byte is then processed normally
 *      (so `ESC \n` keeps the newline). `ESC ESC` restarts the escape.
 *   2. A CSI or nF sequence is aborted by the first byte outside its grammar
 *      (anything outside 0x20–0x7E, or a parameter byte after an intermediate
 *      byte in CSI). The bytes consumed so far are dropped and the offending
 *      byte is processed normally (LF is kept, ESC starts a new sequence,
 *      printable text is output, …).
 *   3. An OSC / DCS / SOS / PM / APC string is abandoned:
 *        - at LF: the string is dropped and the LF is kept (processed normally);
 *        - at CAN (0x18) or SUB (0x1A): the string is cancelled (as in VT
 *          parsers); the CAN/SUB itself is removed like any C0 control;
 *        - at an ESC that is not followed by `\`: the string is dropped and the
 *          ESC starts a new escape sequence;
 *        - when it is not terminated within MAX_SEQUENCE_BODY (4096) bytes
 *          after its introducer (body + terminator must fit): those 4096 bytes
 *          are dropped, the filter returns to ground state, and the 4097th byte
 *          onwards is processed as ordinary text.
 *   4. The same MAX_SEQUENCE_BODY bound also aborts CSI / nF sequences (rule 2
 *      semantics: the 4097th byte after `ESC [` / `ESC <intermediate>` is
 *      processed normally) so a run of e.g. digits cannot be eaten forever.
 *   5. `end()` emits a held lone 0xC2 (it was not the start of a C1 control) and
 *      silently drops any unfinished escape sequence; the filter is then reset.
 *
 * State is one number, a bounded counter, and (implicitly, via the
 * GROUND_C2 state) at most one held byte: 0xC2 awaiting its second byte.
 */

/**
 * Maximum number of bytes after the introducer (`ESC ]`, `ESC [`, C1 CSI, …)
 * that one sequence may consume, terminator included, before it is abandoned.
 */
export const MAX_SEQUENCE_BODY = 4096;

/**
 * The states, as numbers written out where they are used, each with its name in a comment: with named
 * constants as case labels V8 compiles the switch below to a chain of comparisons, not a jump table, and
 * escape-heavy text goes through about 4% slower.
 *   0 GROUND      normal text
 *   1 GROUND_C2   a 0xC2 held in ground: a C1 control (C2 80–9F) or a normal character
 *   2 ESCAPE      after ESC
 *   3 NF          an nF escape: after ESC + intermediate(s) 0x20–0x2F
 *   4 CSI_PARAM   a CSI, in its parameter part (0x30–0x3F)
 *   5 CSI_INTER   a CSI, in its intermediate part (0x20–0x2F)
 *   6 OSC         an OSC string body (ended by BEL or ST)
 *   7 OSC_C2      in an OSC body, after 0xC2 (C2 9C = ST)
 *   8 STR         a DCS / SOS / PM / APC string body (ended by ST only)
 *   9 STR_C2      in such a body, after 0xC2 (C2 9C = ST)
 *  10 STRING_ESC  in any string body, after ESC (ESC \ = ST)
 */

const ESC = 0x1b;
const C2 = 0xc2;

/**
 * SPECIAL[b] !== 0 for bytes that need the state machine in ground state:
 * C0 controls except TAB/LF, DEL, and 0xC2 (lead byte of U+0080–U+00BF, which
 * contains the C1 range).
 */
const SPECIAL = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) SPECIAL[b] = 1;
SPECIAL[0x09] = 0;
SPECIAL[0x0a] = 0;
SPECIAL[0x7f] = 1;
SPECIAL[C2] = 1;

/** @param {number} size */
const newBytes = (size) => new Uint8Array(size);

/**
 * @template {Uint8Array} [Bytes=Uint8Array]
 */
export class AnsiFilter {
  // Plain properties, not #private ones: those cost the fast path about a tenth of its speed (Node 20).
  /**
   * @param {(size: number) => Bytes} [alloc] makes the output arrays (the server passes
   *   `Buffer.allocUnsafe`: its outputs are then Buffers, and not zeroed first)
   */
  constructor(alloc = /** @type {(size: number) => Bytes} */ (newBytes)) {
    /** @private */
    this.alloc = alloc;
    /** @private */
    this.empty = alloc(0);
    /** @private */
    this.state = 0 /* GROUND */;
    /** @private Body bytes consumed by the current CSI / nF / string sequence. */
    this.count = 0;
  }

  /** Nothing is pending: the next byte is read outside any escape sequence. */
  get ground() {
    return this.state === 0 /* GROUND */;
  }

  /**
   * Filters one chunk. Returns either `chunk` itself (fast path: nothing to
   * remove and no pending state) or a view into a freshly allocated array.
   * The result for a whole stream does not depend on how it is chunked.
   * @param {Bytes} chunk
   * @returns {Bytes}
   */
  push(chunk) {
    const n = chunk.length;
    let state = this.state;
    let i = 0;

    if (state === 0 /* GROUND */) {
      // Fast scan; doubles as the first part of the single pass.
      while (i < n && SPECIAL[chunk[i]] === 0) i++;
      if (i === n) return chunk;
    }

    // Output never exceeds the input, plus one for a 0xC2 held from before.
    const out = this.alloc(state === 1 /* GROUND_C2 */ ? n + 1 : n);
    let o = 0;
    if (i > 0) {
      out.set(chunk.subarray(0, i));
      o = i;
    }
    let count = this.count;

    for (; i < n; i++) {
      const b = chunk[i];
      // Inner loop lets a state re-dispatch the same byte (`continue`).
      for (;;) {
        switch (state) {
          case 0 /* GROUND */:
            if (SPECIAL[b] === 0) out[o++] = b;
            else if (b === ESC) state = 2 /* ESCAPE */;
            else if (b === C2) state = 1 /* GROUND_C2 */;
            // else: C0 control / DEL — dropped.
            break;

          case 1 /* GROUND_C2 */:
            if (b === 0x9b) {
              state = 4 /* CSI_PARAM */;
              count = 0;
            } else if (b === 0x9d) {
              state = 6 /* OSC */;
              count = 0;
            } else if (b === 0x90 || b === 0x98 || b === 0x9e || b === 0x9f) {
              state = 8 /* STR */;
              count = 0;
            } else if (b >= 0x80 && b <= 0x9f) {
              state = 0 /* GROUND */; // other C1 control: dropped
            } else {
              out[o++] = C2; // not C1: emit the held byte, reprocess this one
              state = 0 /* GROUND */;
              continue;
            }
            break;

          case 2 /* ESCAPE */:
            count = 0;
            if (b === 0x5b) state = 4 /* CSI_PARAM */; // [
            else if (b === 0x5d) state = 6 /* OSC */; // ]
            else if (b === 0x50 || b === 0x58 || b === 0x5e || b === 0x5f) state = 8 /* STR */; // P X ^ _
            else if (b >= 0x20 && b <= 0x2f) state = 3 /* NF */;
            else if (b >= 0x30 && b <= 0x7e) state = 0 /* GROUND */; // Fp/Fe/Fs: done
            else if (b === ESC) state = 2 /* ESCAPE */; // restart
            else {
              state = 0 /* GROUND */; // rule 1: drop the ESC, reprocess b
              continue;
            }
            break;

          case 3 /* NF */:
            if (++count > MAX_SEQUENCE_BODY) {
              state = 0 /* GROUND */;
              continue;
            }
            if (b >= 0x20 && b <= 0x2f) break;
            state = 0 /* GROUND */;
            if (b >= 0x30 && b <= 0x7e) break; // final byte
            continue; // rule 2: abort, reprocess b

          case 4 /* CSI_PARAM */:
            if (++count > MAX_SEQUENCE_BODY) {
              state = 0 /* GROUND */;
              continue;
            }
            if (b >= 0x30 && b <= 0x3f) break;
            if (b >= 0x20 && b <= 0x2f) {
              state = 5 /* CSI_INTER */;
              break;
            }
            state = 0 /* GROUND */;
            if (b >= 0x40 && b <= 0x7e) break; // final byte
            continue; // rule 2

          case 5 /* CSI_INTER */:
            if (++count > MAX_SEQUENCE_BODY) {
              state = 0 /* GROUND */;
              continue;
            }
            if (b >= 0x20 && b <= 0x2f) break;
            state = 0 /* GROUND */;
            if (b >= 0x40 && b <= 0x7e) break; // final byte
            continue; // rule 2 (includes a parameter byte after intermediates)

          case 6 /* OSC */:
          case 8 /* STR */:
            if (++count > MAX_SEQUENCE_BODY || b === 0x0a) {
              state = 0 /* GROUND */; // rule 3: abandon, reprocess b
              continue;
            }
            if (b === ESC) state = 10 /* STRING_ESC */;
            else if (b === C2) state = state === 6 /* OSC */ ? 7 /* OSC_C2 */ : 9 /* STR_C2 */;
            else if (b === 0x18 || b === 0x1a) state = 0 /* GROUND */; // CAN / SUB
            else if (b === 0x07 && state === 6 /* OSC */) state = 0 /* GROUND */; // BEL ends OSC
            break;

          case 7 /* OSC_C2 */:
          case 9 /* STR_C2 */:
            if (b === 0x9c) {
              state = 0 /* GROUND */; // C1 ST
              break;
            }
            // The C2 was ordinary body; let the string state see this byte.
            state = state === 7 /* OSC_C2 */ ? 6 /* OSC */ : 8 /* STR */;
            continue;

          case 10 /* STRING_ESC */:
            if (b === 0x5c) {
              state = 0 /* GROUND */; // ESC \ = ST
              break;
            }
            state = 2 /* ESCAPE */; // rule 3: abandon string, ESC starts a new escape
            continue;
        }
        break;
      }
    }

    this.state = state;
    this.count = count;
    return o === 0 ? this.empty : /** @type {Bytes} */ (out.subarray(0, o));
  }

  /**
   * Flushes held bytes (a lone 0xC2) and resets the filter to ground state.
   * @returns {Bytes}
   */
  end() {
    const held = this.state === 1 /* GROUND_C2 */;
    this.state = 0 /* GROUND */;
    this.count = 0;
    if (!held) return this.empty;
    const out = this.alloc(1);
    out[0] = C2;
    return out;
  }
}
