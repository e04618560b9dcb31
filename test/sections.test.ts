// Sections (GitLab section_start/section_end, GitHub ::group::/::endgroup::) found in raw log bytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AnsiFilter } from '../src/text/ansi-filter.js';
import { SectionMarkerFilter, stripSectionMarkers } from '../src/text/section-markers.js';
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

describe('SectionMarkerFilter (the stripped view)', () => {
  /** Marker filter, then the ANSI filter, as a stripped read does. */
  function strip(chunks: Buffer[]): string {
    const markers = new SectionMarkerFilter();
    const ansi = new AnsiFilter();
    const out = chunks.map((c) => ansi.push(markers.push(c)));
    out.push(ansi.push(markers.end()), ansi.end());
    return Buffer.concat(out).toString();
  }

  test('GitLab: header text instead of the markers; GitHub: titles, no ::endgroup:: lines', () => {
    assert.equal(
      strip([Buffer.from(GITLAB_LOG)]),
      [
        'Running with gitlab-runner 17.5.0 (a1b2c3d4)',
        'Preparing the "docker" executor',
        'Using Docker executor with image node:20 ...',
        '',
        'Executing "step_script" stage of the job script',
        '$ npm ci',
        'Running tests',
        '  ✓ parses the config (3 ms)',
        '',
        '',
        'Job succeeded',
        '',
      ].join('\n'),
    );
    assert.equal(
      strip([Buffer.from(GITHUB_LOG)]),
      [
        '2026-11-30T10:00:00.000Z Install dependencies',
        '2026-11-30T10:00:00.100Z added 312 packages in 4s',
        '2026-11-30T10:00:04.500Z Post-install scripts',
        '2026-11-30T10:00:05.000Z ok',
        '2026-11-30T10:00:06.100Z Build',
        '2026-11-30T10:00:07.000Z error TS2304: Cannot find name "x"',
        '',
      ].join('\n'),
    );
  });

  test('the same stripped text whatever the chunking: split at every byte, and one byte at a time', () => {
    for (const log of [GITLAB_LOG, GITHUB_LOG, 'a::b section_ x\nsection_start:1:n\rkept\n::endgroup:: trailing\nlast :: line']) {
      const bytes = Buffer.from(log);
      const whole = strip([bytes]);
      assert.equal(new AnsiFilter().push(stripSectionMarkers(bytes)).toString(), whole, 'the whole-log function agrees');
      for (let cut = 0; cut <= bytes.length; cut++) {
        assert.equal(strip([bytes.subarray(0, cut), bytes.subarray(cut)]), whole, `cut at ${cut} of ${JSON.stringify(log.slice(0, 20))}`);
      }
      assert.equal(strip([...bytes].map((b) => Buffer.from([b]))), whole);
    }
  });

  test('ordinary output goes through at once, unchanged; only a possible marker or group line start waits', () => {
    const f = new SectionMarkerFilter();
    const plain = Buffer.from('compiling 12 files\n');
    assert.equal(f.push(plain), plain, 'the very same buffer');
    assert.equal(f.push(Buffer.from('progress 45%')).toString(), 'progress 45%');
    assert.equal(f.push(Buffer.from('\nbuilding section_st')).toString(), '\nbuilding ');
    assert.equal(f.push(Buffer.from('ory\n2026-11-30T10:00:0')).toString(), 'section_story\n');
    assert.equal(f.push(Buffer.from('0.000Z ::group::Build\n')).toString(), '2026-11-30T10:00:00.000Z Build\n');
  });
});
