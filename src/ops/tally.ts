import type { Registry } from 'prom-client';

/*
 * Counters and histograms for the hot paths (every request, every append, every live write to a follower).
 * prom-client's own `inc`/`observe` hash their label object on every call (1-2 µs each, measured), which
 * is more than these paths may spend; here a labelled series is looked up once and then costs a field
 * increment (a bucket scan for histograms). prom-client still does the rest: the registry, the default
 * process metrics and the text format; these objects only hand it their values when it is scraped.
 */

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels;
  value: number;
  metricName?: string;
}

interface Exported {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
  inc(by = 1): void {
    this.value += by;
  }
}

export class HistogramSeries {
  /** Observations per bucket (not cumulative; summed up when scraped), the last one past every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Bound to its series, so it can be handed on as a plain callback. */
  readonly observe = (value: number): void => {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.counts[i]!++;
    this.sum += value;
    this.count++;
  };
}

abstract class Family<S> {
  readonly #series = new Map<string, S>();
  readonly aggregator = 'sum' as const;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {}

  /** The series of these label values (in `labelNames` order), created on first use; keep it for the hot path. */
  series(...values: string[]): S {
    const key = values.join('\u0000');
    let s = this.#series.get(key);
    if (!s) {
      const labels: Labels = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
      s = this.create(labels);
      this.#series.set(key, s);
    }
    return s;
  }

  protected all(): IterableIterator<S> {
    return this.#series.values();
  }

  protected abstract create(labels: Labels): S;

  register(registry: Registry): this {
    // prom-client formats anything with a name, help, type and `get()` returning its values.
    registry.registerMetric(this as never);
    return this;
  }
}

export class TallyCounter extends Family<CounterSeries> {
  readonly type = 'counter' as const;
  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels);
  }
  async get(): Promise<Exported> {
    const values = [...this.all()].map((s) => ({ labels: s.labels, value: s.value }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class TallyHistogram extends Family<HistogramSeries> {
  readonly type = 'histogram' as const;
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    readonly bounds: readonly number[],
  ) {
    super(name, help, labelNames);
  }
  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }
  async get(): Promise<Exported> {
    const values: MetricValue[] = [];
    for (const s of this.all()) {
      let cumulative = 0;
      this.bounds.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: String(le) }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: s.labels, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: s.labels, value: s.count });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}
