import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/*
 * Scrapes are read with the Prometheus project's own parser (prometheus_client's
 * text_string_to_metric_families, Debian's python3-prometheus-client, which `npm test` installs:
 * scripts/ensure-test-tools.sh): the npm parsers drop the labels of labelled histograms.
 */
const PARSE = `
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    # NaN (a valid sample value: prom-client's event-loop lag mean when two scrapes come within its
    # sampling interval) is no JSON: it travels as null.
    out[family.name] = {"type": family.type, "samples": [{"name": s.name, "labels": s.labels, "value": None if s.value != s.value else s.value} for s in family.samples]}
print(json.dumps(out))
`;

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export type Scrape = Map<string, { type: string; samples: Sample[] }>;

/** The text of a scrape, parsed; fails the test on anything the Prometheus parser refuses. */
export function parseScrape(text: string): Scrape {
  const run = spawnSync('/usr/bin/python3', ['-c', PARSE], { input: text, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(run.status, 0, `the Prometheus parser refused the text: ${run.stderr}`);
  const parsed = JSON.parse(run.stdout, (key, v: unknown) => (key === 'value' && v === null ? NaN : v)) as Record<string, { type: string; samples: Sample[] }>;
  return new Map(Object.entries(parsed));
}

/** GET /metrics, parsed. */
export async function scrape(server: { url: string }, token?: string): Promise<Scrape> {
  const res = await fetch(`${server.url}/metrics`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseScrape(text);
}

const matches = (s: Sample, labels: Record<string, string>) => Object.entries(labels).every(([k, v]) => s.labels[k] === v);

/** The family a sample name belongs to (counters are named without `_total`, histograms without their suffix). */
function familyOf(scrape: Scrape, sampleName: string) {
  const base = sampleName.replace(/_(total|bucket|count|sum)$/, '');
  const family = scrape.get(sampleName) ?? scrape.get(base);
  assert.ok(family, `metric ${sampleName} is exposed`);
  return family;
}

/** The value of the one sample named `name` with these labels (0 when that series does not exist yet). */
export function value(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const found = familyOf(scrape, name).samples.filter((s) => s.name === name && matches(s, labels));
  assert.ok(found.length <= 1, `one series of ${name} with ${JSON.stringify(labels)}, got ${found.length}`);
  return found[0]?.value ?? 0;
}

const bound = (s: Sample) => (s.labels.le === '+Inf' ? Infinity : Number(s.labels.le));

/** A histogram series' count, after checking its buckets are cumulative and end at the count. */
export function histogramCount(scrape: Scrape, name: string, labels: Record<string, string> = {}): number {
  const family = familyOf(scrape, `${name}_count`);
  assert.equal(family.type, 'histogram', `${name} is a histogram`);
  const buckets = family.samples
    .filter((s) => s.name === `${name}_bucket` && matches(s, labels))
    .sort((a, b) => bound(a) - bound(b));
  const count = value(scrape, `${name}_count`, labels);
  if (count === 0 && buckets.length === 0) return 0;
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, `${name} buckets are cumulative`);
  assert.equal(buckets.at(-1)?.labels.le, '+Inf');
  assert.equal(buckets.at(-1)?.value, count, `${name}: the +Inf bucket equals the count`);
  return count;
}
