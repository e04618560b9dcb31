/**
 * A realistic corpus of build output, generated (seeded, so every run is the same): what npm, docker,
 * a C/TypeScript compiler and test runners print, with their colours, timestamps, hashes, durations and
 * progress lines. Used by bench/storage-ratio.ts to measure how well finished logs pack.
 */

/** Mulberry32: a small seeded PRNG, so the corpus is the same on every machine. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = ['core', 'utils', 'http', 'parser', 'config', 'auth', 'client', 'server', 'stream', 'cache', 'logger', 'router', 'schema', 'queue', 'worker', 'store', 'render', 'theme', 'i18n', 'metrics'];
const PKGS = ['react', 'lodash', 'express', 'typescript', 'webpack', 'babel-loader', '@types/node', 'eslint', 'jest', 'axios', 'chalk', 'commander', 'debug', 'semver', 'glob', 'rimraf', 'uuid', 'yargs', 'ws', 'zod'];

class Writer {
  readonly parts: string[] = [];
  #t: number;
  constructor(
    readonly r: () => number,
    start: number,
  ) {
    this.#t = start;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)]!;
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.r() * (hi - lo + 1));
  }
  hex(n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += '0123456789abcdef'[Math.floor(this.r() * 16)];
    return s;
  }
  /** A line as `buildlog run` sends it: ISO timestamp first. */
  line(text: string): void {
    this.#t += this.int(0, 40);
    this.parts.push(`${new Date(this.#t).toISOString()} ${text}\n`);
  }
  text(): string {
    return this.parts.join('');
  }
}

const path = (w: Writer) => `src/${w.pick(WORDS)}/${w.pick(WORDS)}${w.pick(['', '-impl', '-helpers'])}.${w.pick(['ts', 'tsx', 'c', 'cpp'])}`;

export function npmLog(seed: number): string {
  const w = new Writer(rng(seed), 1_764_000_000_000 + seed * 1000);
  w.line('> npm ci --no-audit');
  for (let i = 0; i < 60 + w.int(0, 40); i++) {
    const pkg = w.pick(PKGS);
    if (w.r() < 0.3) w.line(`\u001b[33mnpm\u001b[39m \u001b[43mWARN\u001b[49m deprecated ${pkg}@${w.int(0, 9)}.${w.int(0, 30)}.${w.int(0, 20)}: This version is no longer supported, upgrade to ${w.int(1, 9)}.x`);
    w.line(`npm http fetch GET 200 https://registry.npmjs.org/${pkg}/-/${pkg.replace('@types/', '')}-${w.int(0, 9)}.${w.int(0, 30)}.${w.int(0, 20)}.tgz ${w.int(3, 900)}ms (cache ${w.pick(['miss', 'hit', 'revalidated'])})`);
  }
  for (let i = 0; i < 30; i++) w.line(`npm timing reifyNode:node_modules/${w.pick(PKGS)} Completed in ${w.int(1, 4000)}ms`);
  w.line(`added ${w.int(300, 1500)} packages in ${w.int(5, 90)}s`);
  w.line(`\u001b[1m${w.int(50, 300)}\u001b[22m packages are looking for funding`);
  return w.text();
}

export function dockerLog(seed: number): string {
  const w = new Writer(rng(seed), 1_764_000_000_000 + seed * 1000);
  let step = 0;
  w.line(`#0 building with "default" instance using docker driver`);
  for (let s = 0; s < 14; s++) {
    step++;
    w.line(`#${step} [${s + 1}/14] ${w.pick(['RUN apt-get update && apt-get install -y --no-install-recommends build-essential', 'COPY package*.json ./', 'RUN npm ci', 'COPY . .', 'RUN npm run build', 'WORKDIR /app'])}`);
    w.line(`#${step} sha256:${w.hex(64)}`);
    const lines = w.pick([2, 5, 40, 120]);
    for (let i = 0; i < lines; i++) {
      if (w.r() < 0.5) w.line(`#${step} ${w.int(0, 90)}.${w.int(100, 999)} Get:${i + 1} http://deb.debian.org/debian bookworm/main amd64 lib${w.pick(WORDS)}${w.int(1, 9)} amd64 ${w.int(1, 9)}.${w.int(0, 40)}-${w.int(1, 9)} [${w.int(10, 2000)} kB]`);
      else w.line(`#${step} ${w.int(0, 90)}.${w.int(100, 999)} Setting up lib${w.pick(WORDS)}${w.int(1, 9)}:amd64 (${w.int(1, 9)}.${w.int(0, 40)}-${w.int(1, 9)}) ...`);
    }
    w.line(`#${step} DONE ${w.int(0, 60)}.${w.int(0, 9)}s`);
  }
  w.line(`#${step + 1} exporting layers ${w.int(1, 20)}.${w.int(0, 9)}s done`);
  w.line(`#${step + 1} writing image sha256:${w.hex(64)} done`);
  return w.text();
}

export function compilerLog(seed: number): string {
  const w = new Writer(rng(seed), 1_764_000_000_000 + seed * 1000);
  const files = 150 + w.int(0, 100);
  for (let i = 0; i < files; i++) {
    const f = path(w);
    w.line(`[${String(i + 1).padStart(3)}/${files}] ${w.pick(['CC', 'CXX'])} build/obj/${f.replace(/\.\w+$/, '.o')}`);
    if (w.r() < 0.08) {
      const ln = w.int(1, 900);
      w.line(`\u001b[1m${f}:${ln}:${w.int(1, 80)}: \u001b[35mwarning:\u001b[0m unused variable '\u001b[1m${w.pick(WORDS)}_${w.int(0, 99)}\u001b[0m' [\u001b[35m-Wunused-variable\u001b[0m]`);
      w.line(`  ${ln} |     int ${w.pick(WORDS)}_${w.int(0, 99)} = ${w.int(0, 9999)};`);
      w.line(`      |         \u001b[35m^~~~~~~~~~~\u001b[0m`);
    }
  }
  w.line(`[${files}/${files}] Linking CXX executable build/bin/app`);
  w.line(`tsc -p tsconfig.build.json`);
  for (let i = 0; i < 12; i++) w.line(`${path(w)}(${w.int(1, 500)},${w.int(1, 80)}): error TS${w.int(2000, 7000)}: Property '${w.pick(WORDS)}' does not exist on type '${w.pick(WORDS)}Options'.`);
  return w.text();
}

export function testRunnerLog(seed: number): string {
  const w = new Writer(rng(seed), 1_764_000_000_000 + seed * 1000);
  let passed = 0;
  let failed = 0;
  for (let s = 0; s < 40; s++) {
    const suite = `test/${w.pick(WORDS)}.${w.pick(['test', 'spec'])}.ts`;
    const fail = w.r() < 0.1;
    w.line(`${fail ? '\u001b[0m\u001b[7m\u001b[1m\u001b[31m FAIL \u001b[39m\u001b[22m\u001b[27m\u001b[0m' : '\u001b[0m\u001b[7m\u001b[1m\u001b[32m PASS \u001b[39m\u001b[22m\u001b[27m\u001b[0m'} \u001b[2m${suite.replace(/[^/]+$/, '')}\u001b[22m\u001b[1m${suite.replace(/^.*\//, '')}\u001b[22m (${w.int(1, 30)}.${w.int(0, 999)} s)`);
    for (let t = 0; t < w.int(3, 15); t++) {
      const ok = !fail || w.r() < 0.7;
      if (ok) passed++;
      else failed++;
      w.line(`    ${ok ? '\u001b[32m✓\u001b[39m' : '\u001b[31m✕\u001b[39m'} \u001b[2m${w.pick(['returns', 'handles', 'rejects', 'parses', 'renders'])} ${w.pick(WORDS)} ${w.pick(['when empty', 'with a token', 'on timeout', 'after retry', 'in order'])} (${w.int(0, 900)} ms)\u001b[22m`);
      if (!ok) {
        w.line(`    expect(received).toEqual(expected) // deep equality`);
        w.line(`    Expected: \u001b[32m${w.int(0, 999)}\u001b[39m`);
        w.line(`    Received: \u001b[31m${w.int(0, 999)}\u001b[39m`);
        for (let k = 0; k < 6; k++) w.line(`      at Object.<anonymous> (${path(w)}:${w.int(1, 400)}:${w.int(1, 60)})`);
      }
    }
  }
  w.line(`\u001b[1mTests:\u001b[22m       \u001b[1m\u001b[31m${failed} failed\u001b[39m\u001b[22m, \u001b[1m\u001b[32m${passed} passed\u001b[39m\u001b[22m, ${passed + failed} total`);
  return w.text();
}

export const CORPUS = { npm: npmLog, docker: dockerLog, compiler: compilerLog, 'test runner': testRunnerLog } as const;
