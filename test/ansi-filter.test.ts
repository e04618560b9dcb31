import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { AnsiFilter, MAX_SEQUENCE_BODY, stripAnsi } from '../src/text/ansi-filter.js';
import { seededRandom } from './helpers/random.js';

const b = (s: string): Buffer => Buffer.from(s, 'utf8');
const bin = (...bytes: number[]): Buffer => Buffer.from(bytes);

/** Strips and compares as bytes (hex on failure for readability). */
function check(input: Buffer | string, expected: Buffer | string): void {
  const inp = typeof input === 'string' ? b(input) : input;
  const exp = typeof expected === 'string' ? b(expected) : expected;
  assert.equal(stripAnsi(inp).toString('hex'), exp.toString('hex'));
}

/** Runs a filter over the given chunks and concatenates everything. */
function runChunks(chunks: Buffer[]): Buffer {
  const f = new AnsiFilter();
  const out: Buffer[] = chunks.map((c) => f.push(c));
  out.push(f.end());
  return Buffer.concat(out);
}

describe('AnsiFilter: sequences removed', () => {
  test('SGR colours', () => {
    check('\x1b[31mred\x1b[0m', 'red');
    check('\x1b[1;38;5;208mbold orange\x1b[m plain', 'bold orange plain');
    check('\x1b[38;2;255;0;0mtruecolor\x1b[39;49m', 'truecolor');
    check('\x1b[38:2::255:0:0mcolon-form\x1b[0m', 'colon-form');
  });

  test('cursor moves, erase and private modes', () => {
    check('a\x1b[2Kb\x1b[1Gc\x1b[10;20Hd\x1b[Ae\x1b[3Cf', 'abcdef');
    check('\x1b[?25lhidden cursor\x1b[?25h', 'hidden cursor');
    check('\x1b[?1049h\x1b[2J\x1b[Hscreen', 'screen');
    check('x\x1b[1 qy', 'xy'); // CSI with intermediate byte (DECSCUSR)
  });

  test('OSC 8 hyperlinks (ST and BEL terminated)', () => {
    check('see \x1b]8;;https://example.com/a?b=c\x1b\\the docs\x1b]8;;\x1b\\ now', 'see the docs now');
    check('see \x1b]8;id=1;https://example.com\x07link\x1b]8;;\x07!', 'see link!');
  });

  test('OSC window titles (BEL and ST terminated)', () => {
    check('\x1b]0;My title\x07after', 'after');
    check('\x1b]2;Other title\x1b\\after', 'after');
    check('\x1b]0;žluťoučký title 🚀\x07ok', 'ok');
  });

  test('DCS / SOS / PM / APC strings (ST terminated, BEL is body)', () => {
    check('a\x1bPq#0;2;0;0;0#1!14@\x1b\\b', 'ab');
    check('a\x1bPabc\x07def\x1b\\b', 'ab');
    check('a\x1bXsos\x1b\\b\x1b^pm\x1b\\c\x1b_apc\x07still apc\x1b\\d', 'abcd');
  });

  test('nF and two-byte Fp/Fe/Fs escapes', () => {
    check('\x1b(Bascii\x1b)0\x1b#8\x1b %Gx', 'asciix');
    check('\x1b7save\x1b8\x1bc\x1b=\x1b>\x1bM\x1bD\x1bE\x1b~end', 'saveend');
  });

  test('8-bit C1 forms as UTF-8 (C2 80..C2 9F)', () => {
    // C1 CSI
    check(Buffer.concat([bin(0xc2, 0x9b), b('31mred'), bin(0xc2, 0x9b), b('0m')]), 'red');
    // C1 OSC terminated by BEL, by C1 ST and by ESC \
    check(Buffer.concat([bin(0xc2, 0x9d), b('0;title'), bin(0x07), b('x')]), 'x');
    check(Buffer.concat([bin(0xc2, 0x9d), b('0;title'), bin(0xc2, 0x9c), b('x')]), 'x');
    check(Buffer.concat([b('\x1b]0;title'), bin(0xc2, 0x9c), b('x')]), 'x');
    // C1 DCS / APC terminated by C1 ST
    check(Buffer.concat([bin(0xc2, 0x90), b('dcs'), bin(0xc2, 0x9c), b('y'), bin(0xc2, 0x9f), b('apc'), bin(0xc2, 0x9c)]), 'y');
    // single C1 controls (NEL, IND, stray ST) are removed
    check(Buffer.concat([b('a'), bin(0xc2, 0x85), b('b'), bin(0xc2, 0x84, 0xc2, 0x9c), b('c'), bin(0xc2, 0x80, 0xc2, 0x9f)]), 'abc');
    // non-C1 U+0080..U+00BF characters (© ° ½) are kept
    check('© 20° ½', '© 20° ½');
    // C2 inside an OSC body that is not ST is body (e.g. © in a title)
    check('\x1b]0;© title\x07after', 'after');
  });

  test('control characters: CR, BEL, BS, NUL, VT, FF, DEL removed', () => {
    check('line\r\n', 'line\n');
    check('10%\r20%\r100%\n', '10%20%100%\n');
    check('a\x00b\x07c\x08d\x0be\x0cf\x7fg\x01h\x1fi', 'abcdefghi');
    check('\x1b', '');
  });
});

describe('AnsiFilter: passthrough', () => {
  test('keeps \\n, \\t and multibyte UTF-8 byte-exact', () => {
    const s = 'col1\tcol2\nžluťoučký kůň 🚀 日本語 Ω\n';
    check(s, s);
    check('\x1b[32mžluťoučký 🚀\x1b[0m\tok\n', 'žluťoučký 🚀\tok\n');
  });

  test('invalid UTF-8 passes through byte-exact', () => {
    const invalid = bin(0xff, 0xfe, 0x80, 0xbf, 0xc3, 0x28, 0xe2, 0x82, 0x41, 0xf0, 0x9f, 0x9a, 0xc0, 0xaf, 0xed, 0xa0, 0x80);
    check(invalid, invalid);
    // a lone C2 followed by a non-continuation byte is kept, as is a trailing lone C2
    check(bin(0x41, 0xc2, 0x41, 0xc2, 0xc2, 0xa9, 0xc2), bin(0x41, 0xc2, 0x41, 0xc2, 0xc2, 0xa9, 0xc2));
    // around sequences
    check(Buffer.concat([bin(0xff), b('\x1b[1m'), bin(0xfe, 0xc2), b('\x1b[0m'), bin(0x80)]), bin(0xff, 0xfe, 0xc2, 0x80));
  });

  test('fast path returns the very same Buffer object', () => {
    const f = new AnsiFilter();
    const plain = b('plain text\twith tabs\nand žluťoučký 🚀 and 日本\n');
    assert.equal(f.push(plain), plain);
    const invalid = bin(0xff, 0x80, 0xe2, 0x82, 0x0a);
    assert.equal(f.push(invalid), invalid);
    const empty = Buffer.alloc(0);
    assert.equal(f.push(empty), empty);
    assert.equal(f.end().length, 0);
  });

  test('no fast path while a sequence is pending, but output is right', () => {
    const f = new AnsiFilter();
    assert.equal(f.push(b('a\x1b[3')).toString(), 'a');
    const rest = b('1mred');
    const out = f.push(rest);
    assert.notEqual(out, rest);
    assert.equal(out.toString(), 'red');
    // back in ground state: fast path again
    const again = b('more');
    assert.equal(f.push(again), again);
  });

  test('filtered output does not alias the input', () => {
    const input = b('\x1b[1mbold\x1b[0m');
    const out = stripAnsi(input);
    input.fill(0x58);
    assert.equal(out.toString(), 'bold');
  });
});

describe('AnsiFilter: abort / abandonment rules', () => {
  test('CSI aborted by a byte outside its grammar, which is then processed normally', () => {
    check('\x1b[31\nnext\n', '\nnext\n'); // newline kept
    check('\x1b[12\x1b[0mX', 'X'); // ESC starts a new sequence
    check('\x1b[12žY', 'žY'); // multibyte kept
    check('\x1b[1 2Z', '2Z'); // parameter after intermediate aborts; '2' is text
    check('\x1b[5\rA', 'A'); // CR aborts and is removed
    check(Buffer.concat([b('\x1b[1'), bin(0xc2, 0x9b), b('2mB')]), 'B'); // C1 CSI restarts
  });

  test('nF aborted outside its grammar', () => {
    check('\x1b(\nline', '\nline');
    check('\x1b( \x01ok', 'ok');
  });

  test('ESC followed by a non-escape byte drops only the ESC', () => {
    check('a\x1b\nb', 'a\nb');
    check('a\x1b\x1b[1mb', 'ab');
    check('a\x1bžb', 'ažb');
    check('a\x1b\x7fb', 'ab');
  });

  test('unterminated OSC does not swallow following lines (abandoned at LF)', () => {
    check('\x1b]0;title without terminator\nnext line\nthird line\n', '\nnext line\nthird line\n');
    check('\x1bPunterminated dcs\nkept\n', '\nkept\n');
    check(Buffer.concat([bin(0xc2, 0x9d), b('0;t\nkept\n')]), '\nkept\n');
  });

  test('unterminated OSC abandoned after MAX_SEQUENCE_BODY bytes', () => {
    assert.equal(MAX_SEQUENCE_BODY, 4096);
    const body = 'x'.repeat(MAX_SEQUENCE_BODY);
    const input = b('\x1b]' + body + 'VISIBLE after bound\n');
    check(input, 'VISIBLE after bound\n');
    // body + terminator fitting exactly in the bound: still a complete OSC
    check(b('\x1b]' + body.slice(1) + '\x07ok'), 'ok');
    check(b('\x1b]' + body.slice(2) + '\x1b\\ok'), 'ok');
    // one byte beyond: the terminator arrives too late and is removed as a plain control
    check(b('\x1b]' + body + '\x07ok'), 'ok');
    check(b('\x1b]' + body + 'y\x07ok'), 'yok');
    // the same result when streamed in small chunks
    const chunks: Buffer[] = [];
    for (let i = 0; i < input.length; i += 7) chunks.push(input.subarray(i, i + 7));
    assert.equal(runChunks(chunks).toString(), 'VISIBLE after bound\n');
  });

  test('CSI bounded as well', () => {
    check(b('\x1b[' + '1'.repeat(MAX_SEQUENCE_BODY) + '2m'), '2m');
  });

  test('ESC inside a string that is not ST abandons it and starts a new escape', () => {
    check('\x1b]0;t\x1b[31mX\x1b[0m', 'X');
    check('\x1b]0;t\x1bY', ''); // ESC Y is a two-byte escape
  });

  test('CAN / SUB cancel a string', () => {
    check('\x1b]0;abc\x18def', 'def');
    check('\x1bPabc\x1adef', 'def');
  });

  test('end() flushes a held lone C2 and resets', () => {
    const f = new AnsiFilter();
    assert.equal(f.push(bin(0x61, 0xc2)).toString('hex'), '61');
    assert.equal(f.end().toString('hex'), 'c2');
    // held C2 then non-C1 in the next chunk: output is one byte longer than the chunk
    assert.equal(f.push(bin(0xc2)).length, 0);
    assert.equal(f.push(bin(0x41)).toString('hex'), 'c241');
    // unfinished sequence is dropped by end() and does not leak into later input
    assert.equal(f.push(b('x\x1b[3')).toString(), 'x');
    assert.equal(f.end().length, 0);
    assert.equal(f.push(b('1m')).toString(), '1m');
  });
});

describe('AnsiFilter: chunking invariance', () => {
  const corpus: Buffer[] = [
    b('\x1b[31mred\x1b[0m plain\r\n'),
    b('\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x07 \x1b]0;title\x07'),
    b('žluťoučký 🚀\t\x1b[1;32mok\x1b[m\n\x1b(B\x1b7\x1b8'),
    Buffer.concat([bin(0xc2, 0x9b), b('31mc1'), bin(0xc2, 0x9d), b('0;t'), bin(0xc2, 0x9c), b('©'), bin(0xc2, 0x85, 0xc2)]),
    bin(0xff, 0xc2, 0x41, 0xc2, 0xc2, 0x9b, 0x32, 0x4a, 0x80, 0x1b, 0xc2, 0x9b, 0x6d, 0xe2, 0x82),
    b('\x1b[12\nnext\x1b]0;unterminated\nkept\x1bPdcs\x07\x1b\\x\x1b]t\x1b[1mY\x1b\x1b[m\x7f\x00'),
    b('\x1bPabc\x1adef\x1b]0;abc\x18ghi\x1b( \x01jk\x1b[1 2Z\x1b\nend'),
    Buffer.concat([b('\x1b]0;'), bin(0xc2), b('\n'), bin(0xc2, 0x9d), b('x'), bin(0xc2, 0xc2, 0x9c), b('z')]),
  ];

  const expected: string[] = [
    b('red plain\n').toString('hex'),
    b('link ').toString('hex'),
    b('žluťoučký 🚀\tok\n').toString('hex'),
    Buffer.concat([b('c1©'), bin(0xc2)]).toString('hex'),
    bin(0xff, 0xc2, 0x41, 0xc2, 0x80, 0xe2, 0x82).toString('hex'),
    b('\nnext\nkeptxY').toString('hex'),
    b('defghijk2Z\nend').toString('hex'),
    b('\nz').toString('hex'),
  ];

  test('one-shot outputs are as expected', () => {
    corpus.forEach((input, k) => {
      assert.equal(stripAnsi(input).toString('hex'), expected[k], `corpus[${k}]`);
    });
  });

  test('splitting at every position gives the one-shot output', () => {
    corpus.forEach((input, k) => {
      const whole = stripAnsi(input).toString('hex');
      for (let i = 0; i <= input.length; i++) {
        const got = runChunks([input.subarray(0, i), input.subarray(i)]).toString('hex');
        assert.equal(got, whole, `corpus[${k}] split at ${i}`);
      }
    });
  });

  test('splitting at every pair of positions gives the one-shot output', () => {
    corpus.forEach((input, k) => {
      const whole = stripAnsi(input).toString('hex');
      for (let i = 0; i <= input.length; i++) {
        for (let j = i; j <= input.length; j++) {
          const parts = [input.subarray(0, i), input.subarray(i, j), input.subarray(j)];
          assert.equal(runChunks(parts).toString('hex'), whole, `corpus[${k}] split at ${i},${j}`);
        }
      }
    });
  });

  test('single-byte chunks give the one-shot output', () => {
    corpus.forEach((input, k) => {
      const whole = stripAnsi(input).toString('hex');
      const singles: Buffer[] = [];
      for (let i = 0; i < input.length; i++) singles.push(input.subarray(i, i + 1));
      assert.equal(runChunks(singles).toString('hex'), whole, `corpus[${k}] single bytes`);
    });
  });

  test('seeded random inputs and random splits agree with one-shot', () => {
    // Alphabet biased towards interesting bytes.
    const rnd = seededRandom(0x9e3779b9);
    const alphabet = [0x1b, 0x5b, 0x5d, 0x50, 0x5c, 0x07, 0x0a, 0x0d, 0x09, 0x31, 0x3b, 0x6d, 0x20, 0x28, 0x41, 0xc2, 0x9b, 0x9c, 0x9d, 0x85, 0xa9, 0xff, 0x7f, 0x18, 0x00];
    for (let round = 0; round < 300; round++) {
      const len = 1 + rnd(60);
      const input = Buffer.alloc(len);
      for (let i = 0; i < len; i++) input[i] = alphabet[rnd(alphabet.length)]!;
      const whole = stripAnsi(input).toString('hex');
      const parts: Buffer[] = [];
      let pos = 0;
      while (pos < len) {
        const step = 1 + rnd(5);
        parts.push(input.subarray(pos, pos + step));
        pos += step;
      }
      assert.equal(runChunks(parts).toString('hex'), whole, `round ${round} input ${input.toString('hex')}`);
    }
  });
});
