// The chart's PrometheusRule as Prometheus loads it: its rule groups, rendered by `helm template`.
import { renderChart } from '../install/helm.js';

export interface RuleGroup {
  name: string;
  rules: {
    alert: string;
    expr: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
  }[];
}

/** The PrometheusRule's groups as `helm template` renders them with the chart's default values. */
export function renderedRuleGroups(): RuleGroup[] {
  const { docs } = renderChart(
    ['--set', 'prometheusRule.enabled=true'],
    ['--show-only', 'templates/prometheusrule.yaml'],
  );
  return (docs[0]!.spec as { groups: RuleGroup[] }).groups;
}
