// Every query of every dashboard on live data: the demo's stack (operator, gateway and worker
// processes, Prometheus scraping them as the chart's ServiceMonitor and PodMonitor would) runs a
// short scenario (shards READY, interactions answered, a burst that scales the workers, a
// reshard); then each dashboard's template variables must resolve to the demo bot, and each
// panel target, with the variables filled in as Grafana would, must return at least one series
// over the scenario through Prometheus' HTTP API. The few targets that can only have data when
// something fails, or only for a feature the demo bot does not use, are listed below, each with
// what covers it instead. At the end, on the healthy system, no alert's condition may hold.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  interpolate,
  labelValuesQuery,
  loadDashboards,
  panelTargets,
  targetName,
  type Dashboard,
} from './dashboards.js';
import { runScope, waitUntil } from '../../testenv/index.js';
import { SHORT_DEMO_ARGS } from '../support/short-demo.js';
import { renderedRuleGroups } from './rules.js';
import type * as StackModule from '../../demo/stack.js';
import type * as ScenarioModule from '../../demo/scenario.js';
import type * as OptionsModule from '../../demo/options.js';
import type * as ManifestModule from '../../demo/manifest.js';
import type * as HeadlineModule from '../../demo/headline.js';

// The demo's compiled modules: the stack starts dist/bin/shardwarden.js relative to them.
const dist = (path: string) => fileURLToPath(new URL(`../../dist/demo/${path}`, import.meta.url));

/**
 * Targets with data only when something fails, each with what proves its series instead: the
 * alert test that covers it, or (no alert watches it) the test that drives the failure.
 */
const FAILURE_ONLY: Record<string, string> = {
  'workers / 429s by route and scope #1': 'alert ShardwardenDiscordRateLimited (alerts.promtool.yaml)',
  'workers / Failed jobs #1': 'alert ShardwardenJobsFailing (alerts.promtool.yaml)',
  'workers / RPC failovers #1': 'alert ShardwardenRpcFailingOver (alerts.promtool.yaml)',
  'workers / Database errors #1': 'alert ShardwardenDatabaseErrors (alerts.promtool.yaml)',
};

/** Targets of features the demo bot does not use, each with the test that exercises it. */
const NOT_IN_THE_SCENARIO: Record<string, string> = {
  'workers / RPC calls by endpoint and outcome #1':
    'the demo bot has no token-gated community, so no chain reads; tests/worker/token-gating.test.ts',
};

const WITHOUT_LIVE_DATA = { ...FAILURE_ONLY, ...NOT_IN_THE_SCENARIO };

const STEP_SECONDS = 5;

/** Alert conditions a healthy but loaded test machine may meet anyway, and why. */
const MAY_HOLD_ON_A_LOADED_MACHINE: Record<string, string> = {
  ShardwardenHeartbeatLatencyHigh: 'a 2-core machine running other tests can delay heartbeats past 1 s',
};

describe('dashboards on a live system', () => {
  test('every template variable resolves to the demo bot and every panel target has data', async () => {
    if (!existsSync(dist('stack.js'))) throw new Error(`${dist('stack.js')} is missing: run 'make build'`);
    const { startDemoStack } = (await import(dist('stack.js'))) as typeof StackModule;
    const { runScenario } = (await import(dist('scenario.js'))) as typeof ScenarioModule;
    const { parseDemoOptions } = (await import(dist('options.js'))) as typeof OptionsModule;
    const { DEMO_BOT, DEMO_NAMESPACE } = (await import(dist('manifest.js'))) as typeof ManifestModule;
    const { scrapedHeadlines } = (await import(dist('headline.js'))) as typeof HeadlineModule;
    // kwok: under `auto` as root it would start a real node (the image build, the machine-wide
    // lock); the dashboards need only the same metrics, which kwok's pod processes export.
    const options = parseDemoOptions([...SHORT_DEMO_ARGS, '--node', 'kwok'], {});
    if (options === 'help') throw new Error('unexpected --help');
    const lines: string[] = [];
    const say = (line: string) => lines.push(line);
    const start = Date.now() / 1000;
    // The demo's own scope: whatever happens, everything the stack started is stopped.
    const scope = runScope();
    try {
      const stack = await startDemoStack(options, say, randomBytes(6).toString('hex'), scope);
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
        // Each target's series over the scenario, or Prometheus' error for a query it refuses.
        const evaluate = async () =>
          Promise.all(
            panelTargets(d).map(async (t) => {
              const expr = interpolate(t.expr, values, grafana);
              const name = targetName(t);
              try {
                const series = await prom.queryRange(expr, start, Date.now() / 1000, STEP_SECONDS);
                return { name, expr, series: series.length, error: undefined };
              } catch (err) {
                return { name, expr, series: 0, error: (err as Error).message };
              }
            }),
          );
        const withoutData = (results: Awaited<ReturnType<typeof evaluate>>) =>
          results
            .filter((r) => r.series === 0 && !(r.name in WITHOUT_LIVE_DATA))
            .map((r) => `${r.name}: ${r.expr}`);
        // The last scrapes after the scenario may still be on their way: poll until each has data.
        let results = await evaluate();
        await waitUntil(
          `every ${d.name} target has data`,
          async () => withoutData((results = await evaluate())).length === 0 || results.some((r) => r.error),
          { timeoutMs: 60_000, intervalMs: 2_000 },
        ).catch(() => undefined); // the expectation below says which targets had none
        expect({
          dashboard: d.name,
          refused: results.filter((r) => r.error).map((r) => `${r.name}: ${r.error}`),
          withoutData: withoutData(results),
        }).toEqual({ dashboard: d.name, refused: [], withoutData: [] });
      }

      // The system ended healthy (every event processed, reshard complete): no alert's
      // condition may hold on what Prometheus scraped (the `for:` durations are promtool's part).
      const holding = await Promise.all(
        renderedRuleGroups()
          .flatMap((g) => g.rules)
          .filter((r) => !(r.alert in MAY_HOLD_ON_A_LOADED_MACHINE))
          .map(async (r) => ({ alert: r.alert, series: (await prom.query(r.expr)).map((x) => x.metric) })),
      );
      expect(holding.filter((h) => h.series.length > 0)).toEqual([]);

      // The demo's closing table reads the same Prometheus: every row has data.
      const table = await scrapedHeadlines(
        prom,
        { namespace: DEMO_NAMESPACE, name: DEMO_BOT },
        start,
        Date.now() / 1000,
      );
      console.log(table.join('\n'));
      expect(table.filter((row) => row.includes('no data'))).toEqual([]);
    } finally {
      await scope.stop();
    }
  }, 600_000);

  test('the lists of targets without live data name real targets', () => {
    const all = new Set(loadDashboards().flatMap(panelTargets).map(targetName));
    expect(Object.keys(WITHOUT_LIVE_DATA).filter((t) => !all.has(t))).toEqual([]);
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
