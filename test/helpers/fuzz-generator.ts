// The request generator of test/security-fuzz.test.ts: from a seeded PRNG, requests that are mostly
// well-formed and aimed at the server's real routes and jobs, with hostile ids, parameters, headers and
// bodies mixed in.
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';

/** The body limit the fuzzed server runs with. */
export const MAX_BODY = 64 * 1024;
export const XSS = '<script>alert(1)</script>';

/** mulberry32: small, fast, and the same sequence for the same seed everywhere. */
export function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(items: readonly T[]): T => items[int(items.length)]!;
  const chance = (p: number) => next() < p;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const chars = (n: number, alphabet: string) => Array.from({ length: n }, () => alphabet[int(alphabet.length)]).join('');
  return { next, int, pick, chance, bytes, chars };
}
export type Rng = ReturnType<typeof prng>;

export interface FuzzRequest {
  n: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const ODD = '!$&\'()*+,;=:@-._~%/?#[]{}|\\^`"<> ';

/** The jobs the requests aim at: the fixtures (someone else's) and the fuzzer's own, and the fuzzer's token. */
export interface FuzzTargets {
  fixtures: readonly { id: string; kind: 'build' | 'run' }[];
  ownIds: readonly string[];
  fuzzToken: string;
}

export function fuzzGenerator({ fixtures, ownIds, fuzzToken }: FuzzTargets): { generate(rng: Rng, n: number): FuzzRequest } {
  const METHODS = ['GET', 'GET', 'GET', 'GET', 'GET', 'GET', 'POST', 'POST', 'POST', 'POST', 'PUT', 'PUT', 'HEAD', 'HEAD', 'OPTIONS', 'DELETE', 'PATCH'];
  const ODD_METHODS = ['PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'PURGE', 'REPORT', 'TRACE', 'LINK', 'UNLINK', 'NOTIFY', 'SUBSCRIBE', 'MERGE', 'QUERY', 'FOO', 'G3T', 'get', 'M-SEARCH'];
  const TEMPLATES = [
    '/v2/logs/{id}',
    '/v2/logs/{id}',
    '/v2/logs/{id}/chunks',
    '/v2/logs/{id}/chunks',
    '/v2/actor-builds/{id}',
    '/v2/actor-builds/{id}/log',
    '/v2/actor-builds/{id}/abort',
    '/v2/actor-runs/{id}',
    '/v2/actor-runs/{id}/log',
    '/v2/actor-runs/{id}/abort',
    '/v2/actor-builds',
    '/v2/actor-runs',
    '/v2/users/me',
    '/v2/actors/{actor}',
    '/v2/acts/{actor}',
    '/logs/{id}',
    '/viewer/{file}',
    '/',
    '/v2',
    '/v2/',
    '/v2/logs',
    '/v2//logs//{id}',
    '/v2/logs/{id}/../../users/me',
    '/v2/logs/{id}/chunks/extra',
    '/V2/LOGS/{id}',
    '/v2/%6cogs/{id}',
    '/v2/logs/..%2F..%2F..%2Fetc%2Fpasswd',
    '/../../../etc/passwd',
    '/v2/%2e%2e/%2e%2e/etc/passwd',
    '/v2/users/{id}',
    '/v2/actor-builds/{id}/log/{id}',
    '/{junk}',
    '/v2/{junk}/{id}',
    '*',
  ];
  const FILES = ['index.html', 'log-model.js', 'render.js', 'vendor/ansi_up.js', '../package.json', '..%2Fpackage.json', '%2e%2e/%2e%2e/etc/passwd', '....//....//etc/passwd', '.env', 'index.html%00.js', 'nope.js', '', '%'];

  function genId(rng: Rng): string {
    switch (rng.int(12)) {
      case 0:
      case 1:
      case 2:
        return rng.pick(fixtures).id;
      case 3:
      case 4:
        return rng.pick(ownIds);
      case 5:
        return rng.chars(17, ALNUM);
      case 6:
        return rng.chars(rng.pick([1, 16, 18, 63, 64, 65, 199, 200, 201, 300, 2000]), ALNUM);
      case 7:
        return rng.pick(['', '.', '..', '%2e%2e', '%2F', '%00', '%ff', '%', '%ZZ', '%E0%A4%A', 'null', 'undefined', '__proto__', 'constructor', '0', '-1', '1e9', 'ž', '🚀', '%F0%9F%9A%80', '%C3%A9', '\u00e9\u00ff', 'a;b', 'a,b', 'a@b', 'a~b']);
      case 8:
        return encodeURIComponent(XSS);
      case 9:
        return `${rng.pick(fixtures).id}${rng.pick(['%00', '.log', '..', '/', '?', '#', '%20', '%2F', 'A'])}`;
      default:
        return rng.chars(1 + rng.int(40), ALNUM + ODD).replace(/[ #?%]/g, (c) => encodeURIComponent(c));
    }
  }

  function genActor(rng: Rng): string {
    return rng.pick(['fuzz-target', 'fuzz-own', 'admin~fuzz-target', 'fuzzer~fuzz-own', 'nobody~x', '~', 'a~b~c', '%7E', encodeURIComponent(XSS), 'x'.repeat(rng.pick([1, 100, 201, 1000])), genId(rng)]);
  }

  function genQuery(rng: Rng): string {
    if (rng.chance(0.35)) return '';
    const keys = ['stream', 'stream', 'raw', 'raw', 'download', 'download', 'token', 'waitForFinish', 'gracefully', 'offset', 'limit', 'x', 'stream[]', '__proto__', 'constructor', '%74oken', 'STREAM', '', encodeURIComponent(XSS)];
    const values = ['1', '0', 'true', 'false', 'TRUE', ' 1 ', '%201%20', 'yes', 'no', '', '-1', '2', '%00', '%ff', '%', 'ž', '%F0%9F%9A%80', '0.05', '0.1', 'NaN', 'Infinity', '1e999', '1e3', 'abc', encodeURIComponent(XSS), '[]', '{}'];
    const parts: string[] = [];
    const n = 1 + rng.int(5);
    for (let i = 0; i < n; i++) {
      const key = rng.pick(keys);
      let value = rng.pick(values);
      if (key === 'token') value = rng.pick([fuzzToken, fuzzToken, 'bogus', '', encodeURIComponent(XSS), 'x'.repeat(300)]);
      if (key === 'waitForFinish' && !['0.05', '0.1', '0', '', 'abc', '-1', 'NaN', '1e3'].includes(value)) value = '0.05';
      parts.push(rng.chance(0.1) ? key : `${key}=${value}`);
      if (rng.chance(0.1)) parts.push(`${key}=${rng.pick(values)}`); // repeated
    }
    if (rng.chance(0.03)) parts.push(`pad=${'y'.repeat(rng.pick([1000, 8000, 15_000, 20_000]))}`); // huge
    return `${rng.pick(['?', '?', '?', '#', '?&'])}${parts.join(rng.pick(['&', '&', '&', ';', '&&']))}`;
  }

  function genHeaders(rng: Rng, method: string): Record<string, string> {
    const h: Record<string, string> = {};
    if (rng.chance(0.25)) h.range = rng.pick(['bytes=0-', 'bytes=5-', 'bytes=-5', 'bytes=0-0', 'bytes=3-2', 'bytes=999999999-', 'bytes=99999999999999999999-', 'bytes=0-99999999999999999999', 'bytes=0-1,3-4', 'items=0-1', 'bytes=', 'bytes=-', 'bytes=--1', 'bytes=abc', 'bytes = 1 - 2', 'bytes=-0', 'bytes=18446744073709551616-', `bytes=${XSS}`, 'bytes=1e3-']);
    if (rng.chance(0.3)) h['accept-encoding'] = rng.pick(['gzip', 'br', 'deflate', 'gzip, deflate, br', 'gzip;q=0, br', '*', '*;q=0', 'identity', 'gzip;q=abc', 'x', '', ',,,', 'br;q=0.5, gzip;q=0.6']);
    if (rng.chance(0.1)) h['if-none-match'] = rng.pick(['*', '"abc"', 'W/"x"', `"${rng.pick(fixtures).id}-0-10-raw"`, ',', XSS]);
    if (rng.chance(0.45)) h['content-type'] = rng.pick(['application/json', 'application/json', 'text/plain', 'application/octet-stream', 'application/json; charset=utf-16', 'application/json; charset=latin1', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '', 'garbage', '*/*', 'application/json;;;', 'application/', XSS]);
    if (rng.chance(0.25)) h['content-encoding'] = rng.pick(['gzip', 'gzip', 'deflate', 'br', 'br', 'identity', 'compress', '', 'gzip, gzip', 'GZIP', 'x-gzip', 'zstd', XSS, '\u00e9']);
    if (rng.chance(0.6)) {
      h.authorization = rng.pick([`Bearer ${fuzzToken}`, `Bearer ${fuzzToken}`, `Bearer ${fuzzToken}`, 'Bearer junk', 'Basic Zm9vOmJhcg==', 'Bearer', 'Bearer ', `bearer   ${fuzzToken}   `, `Bearer ${'x'.repeat(5000)}`, 'Bearer a b', 'Bearer \u00e9\u00ff', `Bearer ${XSS}`, `Token ${fuzzToken}`]);
    }
    if (rng.chance(0.15)) h['x-log-offset'] = rng.pick(['0', '5', '-1', 'abc', '1e3', '99999999999999999999', ' 7 ', '', '0x10', String(rng.int(300_000))]);
    if (method === 'OPTIONS' || rng.chance(0.05)) {
      h.origin = rng.pick(['https://viewer.example', 'null', XSS, '']);
      if (rng.chance(0.7)) h['access-control-request-method'] = rng.pick(['GET', 'POST', 'PUT', 'DELETE', 'FOO', '']);
      if (rng.chance(0.5)) h['access-control-request-headers'] = rng.pick(['authorization, x-log-offset', 'x-evil', '', '*']);
    }
    if (rng.chance(0.02)) h.expect = rng.pick(['100-continue', 'something-else']);
    if (rng.chance(0.1)) h[`x-${rng.chars(1 + rng.int(12), 'abcdefghijklmnopqrstuvwxyz-')}`] = rng.chars(rng.int(64), ALNUM + ' ;,=');
    if (rng.chance(0.03)) h['x-huge'] = 'h'.repeat(rng.pick([4000, 12_000, 17_000]));
    if (rng.chance(0.05)) h['user-agent'] = rng.chars(rng.int(300), ALNUM + ODD);
    return h;
  }

  function genBody(rng: Rng, headers: Record<string, string>): Buffer | undefined {
    let body: Buffer;
    switch (rng.int(12)) {
      case 0:
      case 1:
        return undefined;
      case 2:
        body = rng.bytes(rng.int(2048));
        break;
      case 3:
        body = Buffer.from(rng.chars(rng.int(500), ALNUM + ODD + '\n\t\u00e9'), 'latin1');
        break;
      case 4:
        body = Buffer.from(
          JSON.stringify(
            rng.pick([
              { status: rng.pick(['SUCCEEDED', 'FAILED', 'ABORTED', 'TIMED-OUT', 'ABORTING', 'TIMING-OUT', 'RUNNING', 'READY', 'succeeded', '', null, 42]) },
              { status: 'FAILED', statusMessage: rng.chars(rng.pick([10, 2001]), ALNUM), exitCode: rng.pick([0, 1, -1, 1.5, '1', null]) },
              { actId: rng.pick(['ok-name', XSS, '', 'x'.repeat(101), 5]), buildNumber: rng.pick(['0.1.1', '', XSS, 1]) },
              { meta: rng.pick([{ a: 1 }, 'x', [], null, { big: 'b'.repeat(17_000) }]), options: rng.pick([{}, 1, { build: 'x' }]) },
              [],
              'string',
              null,
              42,
            ]),
          ),
        );
        break;
      case 5:
        body = Buffer.from(rng.pick(['{', '{"status":', '[1,2', '{"a":1}}', '\u0000', 'nul', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '"\\ud800"', '{"status":"SUCCEEDED",}', '\ufeff{}', '1e999999', '-']));
        break;
      case 6: {
        const depth = rng.pick([100, 1000, 10_000, 30_000]);
        body = Buffer.from(rng.chance(0.5) ? `{"meta":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}` : `${'['.repeat(depth)}${']'.repeat(depth)}`);
        break;
      }
      case 7:
        body = Buffer.alloc(rng.pick([MAX_BODY, MAX_BODY + 1, MAX_BODY * 2]), 'z');
        break;
      case 8: {
        // A zip bomb in miniature: inflates far past the limit.
        const zeros = Buffer.alloc(MAX_BODY * rng.pick([2, 16]));
        const encoding = rng.pick(['gzip', 'deflate', 'br']);
        headers['content-encoding'] = encoding;
        return encoding === 'gzip' ? gzipSync(zeros) : encoding === 'deflate' ? deflateSync(zeros) : brotliCompressSync(zeros);
      }
      default:
        body = Buffer.from(rng.pick(['hello\n', '{}', '{"status":"SUCCEEDED"}', 'line\r\n', '\x1b[31mred\n', rng.chars(rng.int(200), ALNUM + '\n')]));
    }
    // Compressed as declared (often), or truncated, or not at all.
    const declared = headers['content-encoding'];
    if (declared && ['gzip', 'deflate', 'br', 'GZIP', 'x-gzip'].includes(declared) && rng.chance(0.7)) {
      const packed = declared === 'deflate' ? deflateSync(body) : declared === 'br' ? brotliCompressSync(body) : gzipSync(body);
      return rng.chance(0.25) ? packed.subarray(0, Math.max(1, rng.int(packed.length))) : packed;
    }
    return body;
  }

  /** A request the API would accept as it is (so that the fuzz reaches deep into the handlers). */
  function wellFormed(rng: Rng): { method: string; text: string; headers: Record<string, string>; body?: Buffer } {
    const bearer = { authorization: `Bearer ${fuzzToken}` };
    const anyId = () => (rng.chance(0.5) ? rng.pick(fixtures).id : rng.pick(ownIds));
    const kindPath = (id: string) => {
      const fixture = fixtures.find((f) => f.id === id);
      const kind = fixture ? fixture.kind : ownIds.indexOf(id) % 2 ? 'run' : 'build';
      return `/v2/actor-${kind}s/${id}`;
    };
    const flags = () =>
      ['stream', 'raw', 'download']
        .filter(() => rng.chance(0.4))
        .map((f) => `${f}=${rng.pick(['1', 'true', '0'])}`)
        .join('&');
    const text = () => Buffer.from(rng.chars(1 + rng.int(300), ALNUM + ' \n\t\x1b[;m') + '\n', 'latin1');
    switch (rng.int(10)) {
      case 0:
      case 1:
      case 2: {
        const id = anyId();
        const headers: Record<string, string> = {};
        if (rng.chance(0.4)) headers.range = rng.pick(['bytes=0-', `bytes=${rng.int(300)}-`, `bytes=-${1 + rng.int(300)}`, `bytes=${rng.int(50)}-${50 + rng.int(50)}`]);
        if (rng.chance(0.4)) headers['accept-encoding'] = rng.pick(['gzip', 'br', 'gzip, deflate, br']);
        if (rng.chance(0.1)) headers['if-none-match'] = '*';
        const path = rng.pick([`/v2/logs/${id}`, `${kindPath(id)}/log`]);
        return { method: rng.pick(['GET', 'GET', 'HEAD']), text: `${path}?${flags()}`, headers };
      }
      case 3:
        return { method: 'GET', text: `${kindPath(anyId())}?waitForFinish=${rng.pick(['0', '0.05'])}`, headers: rng.chance(0.5) ? bearer : {} };
      case 4: {
        const encoding = rng.pick(['', '', 'gzip', 'deflate', 'br']);
        const raw = text();
        const body = encoding === 'gzip' ? gzipSync(raw) : encoding === 'deflate' ? deflateSync(raw) : encoding === 'br' ? brotliCompressSync(raw) : raw;
        const headers: Record<string, string> = { ...bearer, 'content-type': rng.pick(['text/plain', 'application/octet-stream']) };
        if (encoding) headers['content-encoding'] = encoding;
        if (rng.chance(0.3)) headers['x-log-offset'] = String(rng.int(2000));
        return { method: 'POST', text: `/v2/logs/${rng.pick(ownIds)}/chunks`, headers, body };
      }
      case 5:
        return {
          method: 'POST',
          text: `/v2/actor-${rng.pick(['build', 'run'])}s`,
          headers: { ...bearer, 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ actId: 'fuzz-new', ...(rng.chance(0.3) ? { meta: { n: rng.int(100) } } : {}) })),
        };
      case 6:
        return {
          method: 'PUT',
          text: kindPath(rng.pick(ownIds)),
          headers: { ...bearer, 'content-type': 'application/json' },
          body: Buffer.from(JSON.stringify({ status: rng.pick(['RUNNING', 'SUCCEEDED', 'FAILED', 'ABORTING', 'TIMING-OUT']), statusMessage: 'fuzz' })),
        };
      case 7:
        return { method: 'POST', text: `${kindPath(rng.pick(ownIds))}/abort${rng.chance(0.5) ? '?gracefully=1' : ''}`, headers: bearer };
      case 8:
        return { method: 'GET', text: rng.pick(['/v2/users/me', '/v2/actors/fuzz-own', '/v2/acts/fuzzer~fuzz-own', '/v2/actors/fuzz-target']), headers: bearer };
      default:
        return { method: 'OPTIONS', text: `/v2/logs/${anyId()}`, headers: { origin: 'https://viewer.example', 'access-control-request-method': 'GET' } };
    }
  }

  function generate(rng: Rng, n: number): FuzzRequest {
    let method: string;
    let text: string;
    let headers: Record<string, string>;
    let body: Buffer | undefined;
    if (rng.chance(0.4)) {
      ({ method, text, headers, body } = wellFormed(rng));
      // Then, half the time, one thing goes wrong.
      switch (rng.chance(0.5) ? rng.int(6) : -1) {
        case 0:
          delete headers.authorization;
          break;
        case 1:
          text = text.replace(/[A-Za-z0-9]{17}/, () => rng.pick(fixtures).id); // someone else's job
          break;
        case 2:
          Object.assign(headers, genHeaders(rng, method));
          break;
        case 3:
          body = genBody(rng, headers);
          break;
        case 4:
          method = rng.pick([...METHODS, ...ODD_METHODS]);
          break;
        case 5:
          text += genQuery(rng).replace(/^[?#]/, text.includes('?') ? '&' : '?');
          break;
      }
    } else {
      method = rng.chance(0.06) ? rng.pick(ODD_METHODS) : rng.pick(METHODS);
      text =
        rng
          .pick(TEMPLATES)
          .replace(/\{id\}/g, () => genId(rng))
          .replace('{actor}', () => genActor(rng))
          .replace('{file}', () => rng.pick(FILES))
          .replace('{junk}', () => rng.chars(1 + rng.int(30), ALNUM + '-_.~%').replace(/%/g, '%25')) + genQuery(rng);
      headers = genHeaders(rng, method);
      body = rng.chance(method === 'GET' || method === 'HEAD' ? 0.1 : 0.85) ? genBody(rng, headers) : undefined;
    }
    // Non-ASCII goes out as raw UTF-8 bytes (node:http writes the path as latin1); only what cannot be in a
    // request line at all (controls, space) is %-escaped.
    const path = Buffer.from(text, 'utf8')
      .toString('latin1')
      .replace(/[\x00-\x20\x7f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    if (body && rng.chance(0.2)) headers['transfer-encoding'] = 'chunked';
    else if (body) headers['content-length'] = String(body.length);
    return { n, method, path, headers, body };
  }

  return { generate };
}
