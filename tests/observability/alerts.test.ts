// The chart's alerts on Prometheus' own rule engine: `promtool check rules` on the rule groups
// `helm template` renders, and `promtool test rules` on alerts.promtool.yaml, where every alert
// must fire on a series built for it (exact labels, summary, description, runbook_url) and stay
// quiet on one just on the safe side of its threshold.
import { execFileSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { makeTempDir, promtoolBinary } from '../../testenv/index.js';
import { renderedRuleGroups } from './rules.js';

const CASES = fileURLToPath(new URL('./alerts.promtool.yaml', import.meta.url));

interface AlertCase {
  eval_time: string;
  alertname: string;
  exp_alerts: { exp_labels: Record<string, string>; exp_annotations: Record<string, string> }[];
}

/** Runs promtool; its whole output either way, so a failing case shows what differed. */
function promtool(args: string[], cwd: string): { ok: boolean; output: string } {
  try {
    return {
      ok: true,
      output: execFileSync(promtoolBinary(), args, { cwd, encoding: 'utf8', stdio: 'pipe' }),
    };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

describe('alerts on promtool', () => {
  const dir = makeTempDir('alerts');
  const groups = renderedRuleGroups();
  const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert));
  writeFileSync(join(dir.path, 'rules.yaml'), stringify({ groups }));
  copyFileSync(CASES, join(dir.path, 'alerts.promtool.yaml'));
  afterAll(() => dir.remove());

  test('promtool check rules accepts the rendered rule groups', () => {
    const { ok, output } = promtool(['check', 'rules', 'rules.yaml'], dir.path);
    expect({ ok, output }).toEqual({
      ok: true,
      output: expect.stringContaining(`SUCCESS: ${alerts.length} rules found`),
    });
  });

  test('every alert has a case where it fires, with severity and runbook_url, and one where it stays quiet', () => {
    const cases = (
      parse(readFileSync(CASES, 'utf8')) as { tests: { alert_rule_test: AlertCase[] }[] }
    ).tests.flatMap((t) => t.alert_rule_test);
    const coverage = alerts.map((alert) => {
      const mine = cases.filter((c) => c.alertname === alert);
      const firing = mine.flatMap((c) => c.exp_alerts);
      return {
        alert,
        fires: firing.length > 0,
        firingCasesCarrySeverityAndRunbook: firing.every(
          (a) =>
            !!a.exp_labels.severity && a.exp_annotations.runbook_url?.endsWith(`#${alert.toLowerCase()}`),
        ),
        staysQuiet: mine.some((c) => c.exp_alerts.length === 0),
      };
    });
    expect(coverage).toEqual(
      alerts.map((alert) => ({
        alert,
        fires: true,
        firingCasesCarrySeverityAndRunbook: true,
        staysQuiet: true,
      })),
    );
  });

  test('promtool test rules: every case passes', () => {
    const { ok, output } = promtool(['test', 'rules', 'alerts.promtool.yaml'], dir.path);
    if (!ok) throw new Error(`promtool test rules failed:\n${output}`);
    expect(output).toContain('SUCCESS');
  });
});
