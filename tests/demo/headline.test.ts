// The demo's closing table from range-query results: peak and last value, gaps (NaN) skipped,
// "no data" when Prometheus had nothing.
import { headlineTable, headlines, peakAndLast } from '../../demo/headline.js';

describe('the demo headline table', () => {
  test('peak and last value of the first series, NaN skipped', () => {
    expect(
      peakAndLast([
        {
          metric: {},
          values: [
            [1, '2'],
            [2, '7'],
            [3, 'NaN'],
            [4, '1'],
          ],
        },
      ]),
    ).toEqual({ peak: 7, last: 1 });
    expect(peakAndLast([])).toEqual({});
  });

  test('one row per headline, with its query; missing data says so', () => {
    const [shards, events] = headlines({ namespace: 'bots', name: 'ping' }, 8);
    const lines = headlineTable([
      { headline: shards!, peak: 6, last: 6 },
      { headline: events!, peak: 512.4, last: 3.256 },
    ]);
    expect(lines[0]).toMatch(/^series\s+peak\s+last\s+PromQL$/);
    expect(lines[1]).toMatch(
      /^shards READY\s+6\s+6\s+count\(max by \(shard\) \(shardwarden_gateway_shard_ready\{namespace="bots", bot="ping"\}\) == 1\)$/,
    );
    expect(lines[2]).toMatch(/^events received\/s\s+512\/s\s+3\.26\/s\s+sum\(rate\(.*\[8s\]\)\)$/);
    expect(headlineTable([{ headline: shards! }])[1]).toMatch(/no data\s+no data/);
  });
});
