// The chart's Grafana dashboards as data: their template variables and panel targets, and the
// PromQL Grafana would send once the variables are filled in.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHART } from '../install/helm.js';

const DIR = join(CHART, 'dashboards');

interface Variable {
  name: string;
  type: string;
  definition?: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: { expr: string; refId?: string }[];
}
export interface Dashboard {
  name: string;
  templating: { list: Variable[] };
  panels: Panel[];
}

/** One query of one panel, as "dashboard / panel #n". */
export interface PanelTarget {
  dashboard: string;
  panel: string;
  /** 1-based position among the panel's targets. */
  target: number;
  expr: string;
}

export function loadDashboards(): Dashboard[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      ...(JSON.parse(readFileSync(join(DIR, f), 'utf8')) as Omit<Dashboard, 'name'>),
      name: f.replace(/\.json$/, ''),
    }));
}

export function panelTargets(d: Dashboard): PanelTarget[] {
  return d.panels.flatMap((p) =>
    (p.targets ?? []).map((t, i) => ({ dashboard: d.name, panel: p.title, target: i + 1, expr: t.expr })),
  );
}

export const targetName = (t: Pick<PanelTarget, 'dashboard' | 'panel' | 'target'>) =>
  `${t.dashboard} / ${t.panel} #${t.target}`;

/** A query variable's `label_values(selector, label)`, split; other kinds are not used by the dashboards. */
export function labelValuesQuery(v: Variable): { selector: string; label: string } {
  const m = /^label_values\((.+),\s*(\w+)\)$/.exec(v.definition ?? '');
  if (!m) throw new Error(`variable ${v.name}: expected label_values(selector, label), got ${v.definition}`);
  return { selector: m[1]!, label: m[2]! };
}

/**
 * Grafana's interpolation for a Prometheus data source: `$var` (and `${var}`) as the chosen
 * value, `$__rate_interval` as max(step + scrape interval, 4 × scrape interval).
 */
export function interpolate(
  expr: string,
  values: Record<string, string>,
  grafana: { stepSeconds: number; scrapeIntervalSeconds: number },
): string {
  const rateInterval = Math.max(
    grafana.stepSeconds + grafana.scrapeIntervalSeconds,
    4 * grafana.scrapeIntervalSeconds,
  );
  return expr
    .replaceAll('$__rate_interval', `${rateInterval}s`)
    .replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced?: string, bare?: string) => {
      const name = (braced ?? bare)!;
      const value = values[name];
      if (value === undefined) throw new Error(`no value for $${name} in ${expr}`);
      return value;
    });
}
