// Per-object gauges whose exposition text is rendered once per series, not once per scrape.
//
// prom-client formats every series on every scrape: the label values are escaped (three
// regular expressions each), the label list joined and the line assembled. With ten series per
// bot, a /metrics read at 1,000 bots allocated 7.3 MB (docs/benchmarks.md, cause 10), which a
// Prometheus (or a benchmark polling the counters) pays every scrape and the operator's heap
// grows to absorb. Here each series keeps its line prefix, `name{namespace="…",bot="…"}`, from
// its first set, and a scrape appends only the value: 2.3 MB a read, most of it the answer.
import { Registry } from 'prom-client';

/** What prom-client prints for a sample's value (its util's getValueAsString). */
const valueText = (value: number): string =>
  Number.isNaN(value) ? 'Nan' : value === Infinity ? '+Inf' : value === -Infinity ? '-Inf' : String(value);

/** prom-client's escaping, so the text is byte for byte what a Gauge would print. */
const escapeText = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const escapeLabel = (s: string) => escapeText(s).replace(/"/g, '\\"');

interface Series<L extends string> {
  labels: Record<L, string>;
  /** `name{a="…",b="…"}`, rendered when the series was created. */
  prefix: string;
  value: number;
}

export interface ObjectGaugeOptions<L extends string> {
  name: string;
  help: string;
  labelNames: readonly L[];
  registers: OperatorRegistry[];
}

/** A gauge with one series per object (a bot), all labels given on every set. */
export class ObjectGauge<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  private readonly series = new Map<string, Series<L>>();
  private readonly header: string;

  constructor(options: ObjectGaugeOptions<L>) {
    this.name = options.name;
    this.help = options.help;
    this.labelNames = options.labelNames;
    this.header = `# HELP ${escapeText(this.name)} ${escapeText(this.help)}\n# TYPE ${escapeText(this.name)} gauge`;
    for (const r of options.registers) r.registerObjectGauge(this);
  }

  set(labels: Record<L, string>, value: number): void {
    // As prom-client's Gauge: a value that is not a number would make the whole scrape unreadable.
    if (typeof value !== 'number')
      throw new TypeError(`${this.name}: value is not a number: ${String(value)}`);
    const key = this.key(labels);
    const known = this.series.get(key);
    if (known) {
      known.value = value;
      return;
    }
    const text = this.labelNames.map((n) => `${n}="${escapeLabel(labels[n])}"`).join(',');
    this.series.set(key, { labels: { ...labels }, prefix: `${this.name}{${text}}`, value });
  }

  remove(labels: Record<L, string>): void {
    this.series.delete(this.key(labels));
  }

  /** The series' current values, as prom-client's `get()` gives them (for tests and JSON). */
  values(): { labels: Record<L, string>; value: number }[] {
    return [...this.series.values()].map(({ labels, value }) => ({ labels, value }));
  }

  /** The exposition text of this metric, as Registry#getSingleMetricAsString gives it. */
  text(): string {
    let out = this.header;
    for (const s of this.series.values()) out += `\n${s.prefix} ${valueText(s.value)}`;
    return out;
  }

  // Label values are Kubernetes names (no NUL), so the joined values identify the series.
  private key(labels: Record<L, string>): string {
    return this.labelNames.map((n) => labels[n]).join('\0');
  }
}

/**
 * A prom-client Registry that also serves ObjectGauges, after its own metrics, in the
 * Prometheus text format. Only `metrics()` and `getSingleMetricAsString()` know them
 * (`getMetricsAsJSON()` and the rest of prom-client's API do not).
 */
export class OperatorRegistry extends Registry {
  private readonly objectGauges = new Map<string, ObjectGauge<string>>();

  registerObjectGauge(gauge: ObjectGauge<string>): void {
    if (this.objectGauges.has(gauge.name) || this.getSingleMetric(gauge.name))
      throw new Error(`A metric with the name ${gauge.name} has already been registered.`);
    this.objectGauges.set(gauge.name, gauge);
  }

  override async metrics(): Promise<string> {
    // ObjectGauges print the Prometheus text format; OpenMetrics would also need `# EOF`.
    if (this.contentType !== Registry.PROMETHEUS_CONTENT_TYPE)
      throw new Error('OperatorRegistry serves the Prometheus text format only');
    const own = await Promise.all(this.getMetricsAsArray().map((m) => super.getSingleMetricAsString(m.name)));
    const objects = [...this.objectGauges.values()].map((g) => g.text());
    return `${[...own, ...objects].join('\n\n')}\n`;
  }

  override async getSingleMetricAsString(name: string): Promise<string> {
    return this.objectGauges.get(name)?.text() ?? super.getSingleMetricAsString(name);
  }
}
