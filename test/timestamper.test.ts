import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { LineTimestamper } from '../src/text/timestamper.js';

const T0 = '2017-07-14T06:00:49.733Z';
const fixed = (): Date => new Date(T0);
const b = (s: string): Buffer => Buffer.from(s, 'utf8');

/** A clock that advances by one second on every call, and counts calls. */
function steppingClock(): { now: () => Date; calls: () => number } {
  let n = 0;
  return {
    now: () => new Date(Date.parse(T0) + 1000 * n++),
    calls: () => n,
  };
}
const ts = (k: number): string => new Date(Date.parse(T0) + 1000 * k).toISOString();

describe('LineTimestamper', () => {
  test('prefixes complete lines', () => {
    const t = new LineTimestamper(fixed);
    assert.equal(t.push(b('Application started.\n')).toString(), `${T0} Application started.\n`);
    assert.equal(t.push(b('Second line\n')).toString(), `${T0} Second line\n`);
  });

  test('multiple lines in one chunk, including empty lines', () => {
    const t = new LineTimestamper(fixed);
    assert.equal(t.push(b('a\nbb\n\nccc\n')).toString(), `${T0} a\n${T0} bb\n${T0} \n${T0} ccc\n`);
    assert.equal(t.push(b('\n')).toString(), `${T0} \n`);
  });

  test('partial line continued across pushes without a second prefix', () => {
    const t = new LineTimestamper(fixed);
    assert.equal(t.push(b('Downloading 10%')).toString(), `${T0} Downloading 10%`);
    assert.equal(t.atLineStart, false);
    const cont = b(' 50%');
    const out = t.push(cont);
    assert.equal(out.toString(), ' 50%');
    assert.equal(out, cont); // pure continuation: returned without copying
    assert.equal(t.push(b(' 100%\nDone\nPassword: ')).toString(), ` 100%\n${T0} Done\n${T0} Password: `);
    assert.equal(t.push(b('\n')).toString(), '\n');
    assert.equal(t.atLineStart, true);
    assert.equal(t.push(b('next')).toString(), `${T0} next`);
  });

  test('a line ending exactly at a chunk end: next chunk starts a new line', () => {
    const t = new LineTimestamper(fixed);
    assert.equal(t.push(b('abc')).toString(), `${T0} abc`);
    assert.equal(t.push(b('def\n')).toString(), 'def\n');
    assert.equal(t.push(b('ghi\n')).toString(), `${T0} ghi\n`);
  });

  test('timestamp is taken when the line\'s first byte is pushed (once per push)', () => {
    const clock = steppingClock();
    const t = new LineTimestamper(clock.now);
    // two lines in one chunk share the push-time timestamp; trailing LF does not start a line
    assert.equal(t.push(b('one\ntwo\n')).toString(), `${ts(0)} one\n${ts(0)} two\n`);
    assert.equal(clock.calls(), 1);
    // the next line is stamped when its first byte arrives, i.e. at this push
    assert.equal(t.push(b('three')).toString(), `${ts(1)} three`);
    // continuation only: the clock is not consulted
    assert.equal(t.push(b(' more')).toString(), ' more');
    assert.equal(clock.calls(), 2);
    assert.equal(t.push(b('\nfour\n')).toString(), `\n${ts(2)} four\n`);
    assert.equal(clock.calls(), 3);
  });

  test('empty chunk returns an empty buffer and changes nothing', () => {
    const clock = steppingClock();
    const t = new LineTimestamper(clock.now);
    const out = t.push(Buffer.alloc(0));
    assert.ok(Buffer.isBuffer(out));
    assert.equal(out.length, 0);
    assert.equal(clock.calls(), 0);
    assert.equal(t.push(b('x')).toString(), `${ts(0)} x`);
    assert.equal(t.push(Buffer.alloc(0)).length, 0);
    assert.equal(t.push(b('y\n')).toString(), 'y\n');
  });

  test('byte-exact: \\r\\n, \\r, ANSI and invalid UTF-8 untouched', () => {
    const t = new LineTimestamper(fixed);
    const body = Buffer.concat([b('crlf\r\nprog 1%\rprog 2%\r\x1b[31mred\x1b[0m '), Buffer.from([0xff, 0xc2, 0x80, 0xe2]), b(' žluťoučký 🚀\n')]);
    const prefix = b(`${T0} `);
    const expected = Buffer.concat([prefix, b('crlf\r\n'), prefix, body.subarray(6)]);
    assert.equal(t.push(body).toString('hex'), expected.toString('hex'));
  });

  test('multibyte character split across pushes is not prefixed twice or altered', () => {
    const t = new LineTimestamper(fixed);
    const rocket = b('🚀\n');
    const out = Buffer.concat([t.push(rocket.subarray(0, 2)), t.push(rocket.subarray(2))]);
    assert.equal(out.toString(), `${T0} 🚀\n`);
  });

  test('output equals line-wise expectation for every 2-way split', () => {
    const input = b('first line\nsecond\r\n\nthird partial');
    const whole = new LineTimestamper(fixed).push(input).toString();
    assert.equal(whole, `${T0} first line\n${T0} second\r\n${T0} \n${T0} third partial`);
    for (let i = 0; i <= input.length; i++) {
      const t = new LineTimestamper(fixed);
      const got = Buffer.concat([t.push(input.subarray(0, i)), t.push(input.subarray(i))]).toString();
      assert.equal(got, whole, `split at ${i}`);
    }
  });

  test('default clock produces an ISO-8601 UTC millisecond timestamp', () => {
    const t = new LineTimestamper();
    const before = Date.now();
    const out = t.push(b('hello\n')).toString();
    const after = Date.now();
    const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z) hello\n$/.exec(out);
    assert.ok(m, out);
    const stamped = Date.parse(m[1]!);
    assert.ok(stamped >= before && stamped <= after);
  });
});
