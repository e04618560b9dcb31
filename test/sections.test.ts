// Sections (GitLab section_start/section_end, GitHub ::group::/::endgroup::) found in raw log bytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SectionTracker, sectionToWire, type Section } from '../src/text/sections.js';
import { GITHUB_LOG, GITLAB_LOG } from './fixtures/section-logs.js';

function track(chunks: Buffer[], offset = 0): Section[] {
  const t = new SectionTracker(offset);
  for (const c of chunks) t.push(c);
  return t.sections();
}

describe('SectionTracker', () => {
  test('GitLab sections: names, titles without ANSI, nesting, collapsed, times from the markers, offsets of the markers', () => {
    const bytes = Buffer.from(GITLAB_LOG);
    const s = track([bytes]).map(sectionToWire);
    assert.deepEqual(
      s.map(({ name, title, depth, collapsed, durationMillis }) => ({ name, title, depth, collapsed, durationMillis })),
      [
        { name: 'prepare_executor', title: 'Preparing the "docker" executor', depth: 0, collapsed: false, durationMillis: 3000 },
        { name: 'step_script', title: 'Executing "step_script" stage of the job script', depth: 0, collapsed: true, durationMillis: 8000 },
        { name: 'npm_test', title: 'Running tests', depth: 1, collapsed: false, durationMillis: 6000 },
      ],
    );
    const text = bytes.toString('latin1');
    assert.equal(s[0]!.start, text.indexOf('section_start:1732982400'));
    assert.equal(s[0]!.end, text.indexOf('section_end:1732982403') + 'section_end:1732982403:prepare_executor\r\x1b[0K'.length);
    assert.equal(s[2]!.startedAt, '2024-11-30T16:00:04.000Z');
    assert.ok(bytes.subarray(s[1]!.start, s[1]!.end!).toString().includes('Running tests'), 'a section holds its nested one');
  });

  test('GitHub groups: nested, times from the line timestamps, the last one still open', () => {
    const bytes = Buffer.from(GITHUB_LOG);
    const s = track([bytes]).map(sectionToWire);
    assert.deepEqual(
      s.map(({ name, depth, startedAt, finishedAt, durationMillis, end }) => ({ name, depth, startedAt, finishedAt, durationMillis, open: end === null })),
      [
        { name: 'Install dependencies', depth: 0, startedAt: '2026-11-30T10:00:00.000Z', finishedAt: '2026-11-30T10:00:06.000Z', durationMillis: 6000, open: false },
        { name: 'Post-install scripts', depth: 1, startedAt: '2026-11-30T10:00:04.500Z', finishedAt: '2026-11-30T10:00:05.250Z', durationMillis: 750, open: false },
        { name: 'Build', depth: 0, startedAt: '2026-11-30T10:00:06.100Z', finishedAt: null, durationMillis: null, open: true },
      ],
    );
    const text = bytes.toString();
    assert.equal(s[0]!.start, 0);
    assert.equal(s[0]!.end, text.indexOf('2026-11-30T10:00:06.100Z'), 'a group ends after its ::endgroup:: line');
  });

  test('the same sections whatever the chunking: split at every byte, and one byte at a time', () => {
    for (const log of [GITLAB_LOG, GITHUB_LOG]) {
      const bytes = Buffer.from(log);
      const whole = track([bytes]);
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.deepEqual(track([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `cut at ${cut}`);
      }
      assert.deepEqual(track([...bytes].map((b) => Buffer.from([b]))), whole);
    }
  });

  test('offsets are absolute: a tracker started after retention dropped the head counts from there', () => {
    const s = track([Buffer.from(GITHUB_LOG)], 1_000_000);
    assert.equal(s[0]!.start, 1_000_000);
  });

  test('a marker on a line not yet ended is seen; text that only looks like one is not', () => {
    const t = new SectionTracker();
    t.push(Buffer.from('echo section_start:12:nope without CR\n::group:: not at the start? no: it is\n'));
    t.push(Buffer.from('x ::group::inside a line\nsection_start:1732982400:live\r\x1b[0KLive section'));
    const s = t.sections();
    assert.deepEqual(s.map((x) => x.name), ['not at the start? no: it is', 'live']);
    t.push(Buffer.from('\n'));
    assert.deepEqual(t.sections().map((x) => x.title), ['not at the start? no: it is', 'Live section']);
  });
});
