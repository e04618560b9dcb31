// The viewer's log model (web/log-model.js) on its own: lines, ANSI state across appends, plain text and
// search (test/viewer.test.ts: the page in Chromium).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LogModel, LogSearch, plainText, stateAfter } from '../web/log-model.js';

const ts = (i: number) => `2024-05-01T12:00:${String(i % 60).padStart(2, '0')}.${String(i % 1000).padStart(3, '0')}Z `;

describe('log model (web/log-model.js)', () => {
  test('splits lines across any cut and keeps the partial last line', () => {
    const m = new LogModel();
    m.append('one\ntw');
    assert.deepEqual(m.lines, ['one']);
    assert.equal(m.partial, 'tw');
    assert.equal(m.lineCount, 2);
    m.append('o\n\nthree');
    assert.deepEqual(m.lines, ['one', 'two', '']);
    assert.equal(m.line(3), 'three');
    m.append('\n');
    assert.equal(m.lineCount, 4);
    assert.equal(m.partial, '');
  });

  test('carries the ANSI state from line to line, also when an escape is cut between two appends', () => {
    const m = new LogModel();
    m.append('plain\n\x1b[1;3');
    m.append('1mred bold\nstill red\n\x1b[0mreset\n\x1b[38;5;208morange\x1b[4');
    m.append('9m\nend');
    assert.equal(m.stateAt(0), '');
    assert.equal(m.stateAt(1), '');
    assert.equal(m.stateAt(2), '\x1b[1;31m');
    assert.equal(m.stateAt(3), '\x1b[1;31m');
    assert.equal(m.stateAt(4), '');
    assert.equal(m.stateAt(5), '\x1b[38;5;208m');
    assert.equal(stateAfter('\x1b[1;31m', '\x1b[22m'), '\x1b[31m');
    assert.equal(stateAfter('', '\x1b[38;2;1;2;3;48;5;17mx'), '\x1b[38;2;1;2;3;48;5;17m');
  });

  test('plain text: timestamp apart, escapes and controls gone, carriage returns too (as in the stripped view)', () => {
    assert.equal(plainText(`${ts(1)}\x1b[32mok\x1b[0m\x07 done`), `${ts(1)}ok done`);
    assert.equal(plainText(`${ts(1)}\x1b[32mok`, false), 'ok');
    assert.equal(plainText('progress 10%\rprogress 20%\rprogress 100%\r'), 'progress 10%progress 20%progress 100%');
    assert.equal(plainText('\x1b]0;window title\x07text \x1b]8;;https://x.test\x07link\x1b]8;;\x07'), 'text link');
    assert.equal(plainText('\x1b]8;;javascript:alert(1)\x1b\\bad\x1b]8;;\x1b\\ link'), 'bad link');
  });

  test('search counts every match, case-insensitively, and follows new lines', () => {
    const m = new LogModel();
    const s = new LogSearch(m);
    m.append('Error one\nfine\nerror two, ERROR three\npart err');
    s.setQuery('error', true);
    assert.equal(s.count, 3);
    assert.deepEqual(s.matchLines, [0, 2, 2]);
    assert.deepEqual(s.match(2), { line: 2, nth: 1 });
    m.append('or\n');
    s.update();
    assert.equal(s.count, 4);
    assert.equal(s.firstAtOrAfter(1), 1);
    assert.equal(s.firstAtOrAfter(4), -1);
  });
});
