// The demo's plot page, built from a synthetic scenario, opened from a file in headless Chromium
// (Debian's package): it loads without a console message or script error, every series of both
// plots is laid out with a non-empty extent, and a screenshot shows each series in its colour.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoPage, demoPlots, REPORT_QUERIES, type ReportData } from '../../demo/report.js';
import {
  chromiumUnavailable,
  loadInChromium,
  makeTempDir,
  screenshotInChromium,
} from '../../testenv/index.js';
import { SYNTHETIC_REPORT } from '../support/demo-report-data.js';
import { countColour, decodePng } from '../support/png.js';

/** The same series, with no samples. */
const withoutSamples = (report: ReportData): ReportData => ({
  ...report,
  ...Object.fromEntries(
    REPORT_QUERIES.map((q) => [q, report[q].map((series) => ({ ...series, values: [] }))]),
  ),
});

const unavailable = chromiumUnavailable();
if (unavailable) console.warn(`SKIPPING the Chromium test of the demo page: ${unavailable}`);

// In CI a missing Chromium is a failure, not a skip.
(unavailable && process.env.CI !== 'true' ? describe.skip : describe)('the demo page in Chromium', () => {
  test('loads offline and draws both plots without errors', async () => {
    const dir = makeTempDir('demo-page');
    try {
      const file = join(dir.path, 'demo.html');
      writeFileSync(file, demoPage(SYNTHETIC_REPORT));
      const page = await loadInChromium(file);
      expect(page.console).toEqual([]);
      expect(page.dom).not.toContain('<pre class="page-error">');
      // The load handler ran and found every series drawn: 2 in the first plot, 3 in the second.
      const drawn = [...page.dom.matchAll(/<svg class="plot"[^>]*data-drawn-series="(\d+)"/g)].map(
        (m) => m[1],
      );
      expect(drawn).toEqual(['2', '3']);
      expect(page.dom).toMatch(/data-series="backlog \(jobs\)" data-points="100"/);
      expect(page.dom).toMatch(/data-series="generation 2" data-points="\d+"/);
      expect(page.dom.match(/<polyline points="[\d., ]+"/g)?.length).toBeGreaterThanOrEqual(6);

      // Painted, not only laid out: each series' colour covers at least a line's worth more
      // pixels than on the same page without samples (legend swatches and text stay the same).
      const colours = async (report: ReportData, name: string) => {
        writeFileSync(join(dir.path, `${name}.html`), demoPage(report));
        await screenshotInChromium(join(dir.path, `${name}.html`), join(dir.path, `${name}.png`), {
          width: 860,
          height: 1400,
        });
        const image = decodePng(readFileSync(join(dir.path, `${name}.png`)));
        return demoPlots(report)
          .flatMap((p) => p.series)
          .map((s) => [s.name, countColour(image, s.color)] as const);
      };
      const drawnPixels = await colours(SYNTHETIC_REPORT, 'full');
      const blankPixels = new Map(await colours(withoutSamples(SYNTHETIC_REPORT), 'blank'));
      const painted = Object.fromEntries(
        drawnPixels.map(([name, n]) => [name, n - blankPixels.get(name)! >= 200]),
      );
      expect(painted).toEqual({
        'backlog (jobs)': true,
        'worker replicas': true,
        'generation 1': true,
        'generation 2': true,
        'distinct shards READY': true,
      });
    } finally {
      dir.remove();
    }
  });
});
