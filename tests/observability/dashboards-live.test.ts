// Every query of every dashboard on live data: the demo's stack (operator, gateway and worker
// processes, Prometheus scraping them as the chart's ServiceMonitor and PodMonitor would) runs a
// short scenario (shards READY, interactions answered, a burst that scales the workers, a
// reshard); then each dashboard's template variables must resolve to the demo bot, and each
// panel target, with the variables filled in as Grafana would, must return at least one series
// over the scenario through Prometheus' HTTP API. The few targets that can only have data when
// something fails are listed below, each with what covers it instead.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitUntil } from '../../testenv/index.js';
import {
  interpolate,
  labelValuesQuery,
  loadDashboards,
  panelTargets,
  targetName,
  type Dashboard,
} from './dashboards.js';
import { SHORT_DEMO_ARGS } from '../support/short-demo.js';
import type * as StackModule from '../../demo/stack.js';
import type * as ScenarioModule from '../../demo/scenario.js';
import type * as OptionsModule from '../../demo/options.js';
import type * as ManifestModule from '../../demo/manifest.js';

// The demo's compiled modules: the stack starts dist/bin/shardwarden.js relative to them.
const dist = (path: string) => fileURLToPath(new URL(`../../dist/demo/${path}`, import.meta.url));

/** Targets with data only in a failure; each names what proves it instead of live data. */
const FAILURE_ONLY: Record<string, string> = {
  'workers / 429s by route and scope #1': 'alert ShardwardenDiscordRateLimited (alerts.promtool.yaml)',
};

const STEP_SECONDS = 5;

describe('dashboards on a live system', () => {
  test('every template variable resolves to the demo bot and every panel target has data', async () => {
    if (!existsSync(dist('stack.js'))) throw new Error(`${dist('stack.js')} is missing: run 'make build'`);
    const { startDemoStack } = (await import(dist('stack.js'))) as typeof StackModule;
    const { runScenario } = (await import(dist('scenario.js'))) as typeof ScenarioModule;
    const { parseDemoOptions } = (await import(dist('options.js'))) as typeof OptionsModule;
    const { DEMO_BOT, DEMO_NAMESPACE } = (await import(dist('manifest.js'))) as typeof ManifestModule;
    const options = parseDemoOptions(SHORT_DEMO_ARGS, {});
    if (options === 'help') throw new Error('unexpected --help');
    const lines: string[] = [];
    const say = (line: string) => lines.push(line);
    const start = Date.now() / 1000;
    const stack = await startDemoStack(options, say, randomBytes(6).toString('hex'));
    try {
      const abort = new AbortController();
      const result = await runScenario(stack, options, say, abort.signal).catch((err: Error) => {
        throw new Error(`${err.message}\n${lines.join('\n')}`);
      });
      expect(result).toMatchObject({ lost: 0, reshard: 'complete' });
      const prom = stack.prometheus;

      for (const d of loadDashboards()) {
        const values = await resolveVariables(d, prom.labelValues.bind(prom), {
          namespace: DEMO_NAMESPACE,
          bot: DEMO_BOT,
        });
        const grafana = { stepSeconds: STEP_SECONDS, scrapeIntervalSeconds: prom.scrapeIntervalSeconds };
        const live = panelTargets(d).filter((t) => !(targetName(t) in FAILURE_ONLY));
        // The last scrapes after the scenario may still be on their way: wait until each has data.
        const empty = async () => {
          const end = Date.now() / 1000;
          const counts = await Promise.all(
            live.map(async (t) => ({
              target: targetName(t),
              series: (await prom.queryRange(interpolate(t.expr, values, grafana), start, end, STEP_SECONDS))
                .length,
            })),
          );
          return counts.filter((c) => c.series === 0).map((c) => c.target);
        };
        let missing: string[] = [];
        await waitUntil(
          `every target of dashboard ${d.name} to have a series`,
          async () => (missing = await empty()).length === 0,
          { timeoutMs: 60_000, intervalMs: 2_000 },
        ).catch(() => undefined);
        expect({ dashboard: d.name, targetsWithoutData: missing }).toEqual({
          dashboard: d.name,
          targetsWithoutData: [],
        });
      }
    } finally {
      await stack.stop();
    }
  }, 600_000);

  test('the failure-only list names real targets', () => {
    const all = new Set(loadDashboards().flatMap(panelTargets).map(targetName));
    expect(Object.keys(FAILURE_ONLY).filter((t) => !all.has(t))).toEqual([]);
  });
});

/**
 * The dashboard's query variables in order, each resolved through Prometheus' label values
 * API with the earlier ones filled in; each must offer the wanted value, which is then chosen.
 */
async function resolveVariables(
  d: Dashboard,
  labelValues: (label: string, match: string) => Promise<string[]>,
  wanted: Record<string, string>,
): Promise<Record<string, string>> {
  const chosen: Record<string, string> = {};
  for (const v of d.templating.list.filter((x) => x.type === 'query')) {
    const { selector, label } = labelValuesQuery(v);
    const offered = await labelValues(
      label,
      interpolate(selector, chosen, { stepSeconds: STEP_SECONDS, scrapeIntervalSeconds: 1 }),
    );
    expect({ dashboard: d.name, variable: v.name, offered }).toEqual({
      dashboard: d.name,
      variable: v.name,
      offered: expect.arrayContaining([wanted[v.name]]),
    });
    chosen[v.name] = wanted[v.name]!;
  }
  return chosen;
}
