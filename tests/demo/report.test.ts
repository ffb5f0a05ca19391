// The demo's plot page from range-query results: pure rendering, checked on its markup. (That a
// browser loads and draws it: report-chromium.test.ts.)
import { laterGenerationPod, demoQueries } from '../../demo/headline.js';
import { demoPage, demoPlots } from '../../demo/report.js';
import { axisScale, escapeXml, plotSvg, segments, tickStep } from '../../demo/svg-plot.js';
import { gatewayName } from '../../operator/rendering/gateway.js';
import type { DiscordBot } from '../../operator/api/v1alpha1/types.js';
import { SYNTHETIC_REPORT } from '../support/demo-report-data.js';

describe('the demo plot page', () => {
  test('round axes: ticks of 1, 2 or 5 × 10^k, the top above the largest value', () => {
    expect(tickStep(200, 6)).toBe(50);
    expect(tickStep(1575, 5)).toBe(500);
    expect(tickStep(0.8, 5)).toBe(0.2);
    expect(axisScale(1500)).toEqual({ max: 2000, step: 500 });
    expect(axisScale(3)).toEqual({ max: 4, step: 1 });
    expect(axisScale(0)).toEqual({ max: 1, step: 1 });
  });

  test('a missing step or a NaN breaks the line', () => {
    expect(
      segments(
        [
          [0, 1],
          [2, 2],
          [6, 3],
          [8, NaN],
          [10, 4],
        ],
        2,
      ),
    ).toEqual([
      [
        [0, 1],
        [2, 2],
      ],
      [[6, 3]],
      [[10, 4]],
    ]);
  });

  test('the generation of a gateway pod, from the names the operator gives them', () => {
    const bot = { metadata: { name: 'my.bot' } } as DiscordBot;
    const pattern = new RegExp(`^${laterGenerationPod('my.bot')}$`);
    expect(pattern.exec(`${gatewayName(bot, 3)}-0`)?.[1]).toBe('3');
    expect(pattern.exec(`${gatewayName(bot, 12)}-5`)?.[1]).toBe('12');
    expect(pattern.test(`${gatewayName(bot, 1)}-0`)).toBe(false);
    expect(pattern.test('myXbot-gateway-g2-0')).toBe(false);
  });

  test('backlog against worker replicas, shards READY per generation and in all', () => {
    const [scaling, reshard] = demoPlots(SYNTHETIC_REPORT);
    const q = demoQueries(SYNTHETIC_REPORT.bot, 8);
    expect(scaling!.queries).toEqual([q.backlog, q.workerReplicas]);
    expect(scaling!.series.map((s) => [s.name, s.axis ?? 'left'])).toEqual([
      ['backlog (jobs)', 'left'],
      ['worker replicas', 'right'],
    ]);
    expect(reshard!.queries).toEqual([q.shardsReadyByGeneration, q.shardsReady]);
    // Generations in order, whatever order Prometheus returned them in.
    expect(reshard!.series.map((s) => s.name)).toEqual([
      'generation 1',
      'generation 2',
      'distinct shards READY',
    ]);
    expect(Math.max(...reshard!.series[2]!.points.map(([, v]) => v))).toBe(6);
  });

  test('each series is drawn with as many points as it has samples, split at its gaps', () => {
    const svg = plotSvg(demoPlots(SYNTHETIC_REPORT)[0]!);
    expect(svg).toMatch(/^<svg class="plot" xmlns="http:\/\/www\.w3\.org\/2000\/svg" viewBox="0 0 760 280"/);
    // 101 steps, one (30 s) without a sample: two runs.
    const backlog = /<g class="series" data-series="backlog \(jobs\)" data-points="100"[^>]*>(.*?)<\/g>/.exec(
      svg,
    );
    expect(backlog?.[1]?.match(/<polyline /g)).toHaveLength(2);
    expect(svg).toContain('data-series="worker replicas" data-points="101"');
    // Left axis to 2000 jobs, right to 4 replicas, x in seconds to 200.
    expect(svg).toMatch(/>2000<\/text>/);
    expect(svg).toMatch(/text-anchor="middle">200<\/text>/);
    expect(svg).not.toContain('no data');
  });

  test('a plot without samples says "no data"', () => {
    const empty = { ...SYNTHETIC_REPORT, backlog: [], workerReplicas: [] };
    expect(plotSvg(demoPlots(empty)[0]!)).toContain('>no data</text>');
  });

  test('the page is self-contained: both plots, their PromQL escaped, nothing fetched', () => {
    const html = demoPage(SYNTHETIC_REPORT);
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html.match(/<svg class="plot"/g)).toHaveLength(2);
    expect(html).toContain('<h2>Backlog and worker replicas</h2>');
    expect(html).toContain('<h2>Shards READY per gateway generation</h2>');
    expect(html).toContain(escapeXml(demoQueries(SYNTHETIC_REPORT.bot, 8).shardsReadyByGeneration));
    expect(html).toContain('namespace=&quot;demo&quot;');
    expect(html).not.toMatch(/\b(src|href)=|@import|url\(/);
  });
});
