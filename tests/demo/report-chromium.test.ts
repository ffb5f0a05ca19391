// The demo's plot page, built from a synthetic scenario, opened from a file in headless Chromium
// (Debian's package): it loads without a console message or script error, and every series of
// both plots is laid out with a non-empty extent.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { demoPage } from '../../demo/report.js';
import { chromiumUnavailable, loadInChromium, makeTempDir } from '../../testenv/index.js';
import { SYNTHETIC_REPORT } from '../support/demo-report-data.js';

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
    } finally {
      dir.remove();
    }
  });
});
