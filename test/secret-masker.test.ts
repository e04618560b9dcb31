// The streaming secret masker of `buildlog run` and `buildlog mask`, and the multi-pattern search under it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MultiSearch } from '../src/text/multi-search.js';
import { SecretMasker, SecretSet, secretForms } from '../src/text/secret-masker.js';

/** A small seeded PRNG (mulberry32), so that a failure can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every occurrence of every pattern, the slow and obvious way. */
function naive(text: Buffer, patterns: Buffer[]): string[] {
  const out = new Set<string>();
  for (const p of patterns) {
    for (let at = text.indexOf(p); at !== -1; at = text.indexOf(p, at + 1)) out.add(`${at}-${at + p.length}`);
  }
  return [...out].sort();
}

/** Feeds `chunks` through one masker and returns everything it let out. */
function maskChunks(secrets: SecretSet, chunks: (string | Buffer)[]): string {
  const masker = new SecretMasker(secrets);
  const out = chunks.map((c) => masker.push(Buffer.from(c)));
  out.push(masker.end());
  return Buffer.concat(out).toString();
}

const SECRET = 'hunter2-Sup3rS3cret';
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('MultiSearch', () => {
  test('finds exactly the occurrences a naive search finds, for patterns of every length tier', () => {
    const rand = prng(7);
    const alphabet = 'abcab\n';
    const word = (n: number) => Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    for (let round = 0; round < 300; round++) {
      const patterns = Array.from({ length: 1 + Math.floor(rand() * 6) }, () => Buffer.from(word(1 + Math.floor(rand() * 30))));
      const text = Buffer.from(word(Math.floor(rand() * 400)));
      const found = new MultiSearch(patterns).findAll(text).map((m) => `${m.start}-${m.end}`);
      assert.deepEqual([...new Set(found)].sort(), naive(text, patterns), `round ${round}: ${patterns.join('|')} in ${text}`);
    }
  });

  test('matches at the very start and the very end of the text', () => {
    const search = new MultiSearch([Buffer.from('abcdefghijklmnopqrstuvwxyz0123'), Buffer.from('xyz')]);
    const text = Buffer.from('abcdefghijklmnopqrstuvwxyz0123--abcdefghijklmnopqrstuvwxyz0123');
    assert.deepEqual(naive(text, [Buffer.from('abcdefghijklmnopqrstuvwxyz0123'), Buffer.from('xyz')]), search.findAll(text).map((m) => `${m.start}-${m.end}`).sort());
  });
});

describe('secretForms', () => {
  test('the value, its URL encoding and its base64, also inside a longer base64 text', () => {
    const forms = secretForms('pa ss/w0rd').map(String);
    assert.ok(forms.includes('pa ss/w0rd'));
    assert.ok(forms.includes('pa%20ss%2Fw0rd') && forms.includes('pa+ss%2Fw0rd'));
    assert.ok(forms.includes(b64('pa ss/w0rd')));
    // Basic auth: base64("user:pa ss/w0rd"); the value's part of it is one of the shifted forms.
    const basic = b64('user:pa ss/w0rd');
    assert.ok(forms.some((f) => f.length >= 6 && basic.includes(f) && f.length >= basic.length - 8), forms.join(' '));
  });

  test('each line of a multi-line value is a form of its own', () => {
    const forms = secretForms('-----BEGIN KEY-----\r\nMIIEvQIBADANBgkq\r\n-----END KEY-----').map(String);
    assert.ok(forms.includes('MIIEvQIBADANBgkq'));
  });
});

describe('SecretMasker', () => {
  const secrets = () => new SecretSet([SECRET]);

  test('a secret printed whole, several times, and next to other text', () => {
    assert.equal(maskChunks(secrets(), [`token=${SECRET}\n${SECRET}${SECRET} done\n`]), 'token=[MASKED]\n[MASKED][MASKED] done\n');
  });

  test('a secret split at every byte across two writes is masked the same', () => {
    const line = `export TOKEN=${SECRET} # set\n`;
    for (let cut = 0; cut <= line.length; cut++) {
      assert.equal(maskChunks(secrets(), [line.slice(0, cut), line.slice(cut)]), 'export TOKEN=[MASKED] # set\n', `cut at ${cut}`);
    }
  });

  test('a secret written one byte per write is masked', () => {
    assert.equal(maskChunks(secrets(), [...`a ${SECRET} b`]), 'a [MASKED] b');
  });

  test('URL-encoded and base64 forms, also inside a Basic auth header', () => {
    const set = new SecretSet(['p@ss word!9x']);
    const out = maskChunks(set, [
      `curl https://u:${encodeURIComponent('p@ss word!9x')}@host/\n`,
      `echo ${b64('p@ss word!9x')}\n`,
      `Authorization: Basic ${b64('deploy:p@ss word!9x')}\n`,
    ]);
    assert.ok(!out.includes(encodeURIComponent('p@ss word!9x')) && !out.includes(b64('p@ss word!9x')), out);
    assert.match(out, /^curl https:\/\/u:\[MASKED\]@host\/\necho \[MASKED\]\nAuthorization: Basic \S*\[MASKED\]\S*\n$/);
  });

  test('output that cannot be the start of a secret is let out at once; a possible start is held', () => {
    const masker = new SecretMasker(secrets());
    assert.equal(masker.push(Buffer.from('progress 10%\r')).toString(), 'progress 10%\r');
    assert.equal(masker.push(Buffer.from('user hunt')).toString(), 'user ', 'the beginning of the secret waits');
    assert.equal(masker.push(Buffer.from('ing season\n')).toString(), 'hunting season\n', 'let out once it cannot be one');
    assert.equal(masker.push(Buffer.from('hunter2-Sup')).toString(), '');
    assert.equal(masker.end().toString(), 'hunter2-Sup', 'the end of the output lets the rest out');
  });

  test('overlapping secrets are masked as one run; a longer secret that starts with a shorter one wins', () => {
    const set = new SecretSet(['abcdefgh', 'efghijkl', 'abcdefgh-long']);
    assert.equal(maskChunks(set, ['x abcdefghijkl y abcdefgh-long z abcdefgh-']), 'x [MASKED] y [MASKED] z [MASKED]-');
  });

  test('::add-mask:: registers a value for what follows; the line itself is not shown', () => {
    const set = new SecretSet();
    const out = maskChunks(set, ['before s3cr3t-v4lue\n', '::add-mask::s3cr3t-v4lue\r\n', 'after s3cr3t-v4lue and ', b64('s3cr3t-v4lue'), '\n']);
    assert.equal(out, 'before s3cr3t-v4lue\nafter [MASKED] and [MASKED]\n');
  });

  test('::add-mask:: split at every byte, and only at the start of a line', () => {
    const text = 'a\n::add-mask::zq9-Secret\nzq9-Secret\necho ::add-mask::nope\nnope\n';
    for (let cut = 0; cut <= text.length; cut++) {
      const out = maskChunks(new SecretSet(), [text.slice(0, cut), text.slice(cut)]);
      assert.equal(out, 'a\n[MASKED]\necho ::add-mask::nope\nnope\n', `cut at ${cut}`);
    }
  });

  test('a value registered on one stream masks the other; each stream holds its own partial match', () => {
    const set = new SecretSet();
    const stdout = new SecretMasker(set);
    const stderr = new SecretMasker(set);
    assert.equal(stdout.push(Buffer.from('::add-mask::shared-s3cret\n')).toString(), '');
    assert.equal(stdout.push(Buffer.from('x shared-')).toString(), 'x ');
    assert.equal(stderr.push(Buffer.from('warn: shared-s3cret\n')).toString(), 'warn: [MASKED]\n');
    assert.equal(stdout.push(Buffer.from('s3cret\n')).toString(), '[MASKED]\n');
  });

  test('random text with secrets cut into random chunks: no form of a secret survives', () => {
    const rand = prng(42);
    const values = ['Zx81-secret-value', 'another one 2 hide', 'q'.repeat(6) + 'w'];
    const set = new SecretSet(values);
    const forms = values.flatMap((v) => secretForms(v).map(String));
    for (let round = 0; round < 200; round++) {
      let text = '';
      while (text.length < 300) text += rand() < 0.3 ? forms[Math.floor(rand() * forms.length)] : 'lorem ipsum\n'.slice(0, 1 + Math.floor(rand() * 12));
      const chunks: string[] = [];
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(rand() * 40);
        chunks.push(text.slice(at, at + n));
        at += n;
      }
      const out = maskChunks(set, chunks);
      for (const v of values) assert.ok(!out.includes(v), `round ${round}: "${v}" in ${JSON.stringify(out)}`);
      assert.equal(out, maskChunks(set, [text]), `round ${round}: chunking changes nothing`);
    }
  });

  test('pushParts lets out what push does, in at most two parts per chunk (multi-line secrets and registrations too)', () => {
    const rand = prng(7);
    const values = ['Zx81-secret-value', 'two\nline secret'];
    const pieces = [...values.flatMap((v) => secretForms(v).map(String)), '\n::add-mask::reg1-value\n', 'x reg1-value\n', 'lorem ipsum\n', 'dolor ', '\n'];
    for (let round = 0; round < 300; round++) {
      let text = '';
      while (text.length < 400) text += pieces[Math.floor(rand() * pieces.length)];
      const chunks: Buffer[] = [];
      for (let at = 0; at < text.length; ) {
        const n = 1 + Math.floor(rand() * 60);
        chunks.push(Buffer.from(text.slice(at, at + n)));
        at += n;
      }
      const masker = new SecretMasker(new SecretSet(values));
      const parts: Buffer[] = [];
      for (const chunk of chunks) {
        let count = 0;
        masker.pushParts(chunk, (part) => {
          parts.push(part);
          count++;
        });
        assert.ok(count >= 1 && count <= 2, `round ${round}: ${count} parts`);
      }
      parts.push(masker.end());
      const out = Buffer.concat(parts).toString();
      assert.equal(out, maskChunks(new SecretSet(values), chunks), `round ${round}`);
      assert.ok(!out.includes('Zx81-secret-value'), `round ${round}: ${JSON.stringify(out)}`);
    }
  });
});
