import { Gauge, Registry } from 'prom-client';
import { ObjectGauge, OperatorRegistry } from '../../operator/metrics/object-gauge.js';
import { OperatorMetrics } from '../../operator/metrics/operator-metrics.js';

const NAMES = ['default', 'bots', 'a"quoted\\name\nwith newline'];

/** The same samples through prom-client's Gauge and through an ObjectGauge. */
function both(samples: [namespace: string, bot: string, value: number][]) {
  const plain = new Registry();
  const ours = new OperatorRegistry();
  const options = { name: 'test_bot_shards', help: 'Shards\\of the "bot"\nper plan.' };
  const gauge = new Gauge({ ...options, labelNames: ['namespace', 'bot'], registers: [plain] });
  const objects = new ObjectGauge({ ...options, labelNames: ['namespace', 'bot'], registers: [ours] });
  for (const [namespace, bot, value] of samples) {
    gauge.set({ namespace, bot }, value);
    objects.set({ namespace, bot }, value);
  }
  return { plain, ours, gauge, objects };
}

describe('ObjectGauge', () => {
  test('prints byte for byte what a prom-client Gauge prints, escaping included', async () => {
    const samples: [string, string, number][] = [];
    for (const ns of NAMES)
      for (const [i, v] of [0, 1.5, -2, NaN, Infinity, -Infinity, 1e21].entries())
        samples.push([ns, `bot-${i}`, v]);
    const { plain, ours, gauge, objects } = both(samples);
    // Updates keep their place; a removed series is gone from both.
    gauge.set({ namespace: 'bots', bot: 'bot-1' }, 7);
    objects.set({ namespace: 'bots', bot: 'bot-1' }, 7);
    gauge.remove({ namespace: 'default', bot: 'bot-2' });
    objects.remove({ namespace: 'default', bot: 'bot-2' });

    expect(await ours.getSingleMetricAsString('test_bot_shards')).toBe(
      await plain.getSingleMetricAsString('test_bot_shards'),
    );
    expect(await ours.metrics()).toBe(await plain.metrics());
    expect(objects.values()).toContainEqual({ labels: { namespace: 'bots', bot: 'bot-1' }, value: 7 });
    expect(objects.values()).toHaveLength(samples.length - 1);
    // As prom-client's Gauge: a value that is not a number is refused, not printed.
    expect(() => objects.set({ namespace: 'bots', bot: 'x' }, undefined as never)).toThrow(/not a number/);
    expect(() => gauge.set({ namespace: 'bots', bot: 'x' }, undefined as never)).toThrow();
  });

  test("the operator's registry serves prom-client metrics and object gauges in one exposition", async () => {
    const metrics = new OperatorMetrics();
    metrics.botShards.set({ namespace: 'bots', bot: 'sietch' }, 3);
    metrics.workerBacklog.set({ namespace: 'bots', name: 'sietch' }, 12);
    metrics.reconciles.inc({ result: 'ok' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('shardwarden_bot_shards{namespace="bots",bot="sietch"} 3\n');
    expect(text).toContain('shardwarden_operator_worker_backlog{namespace="bots",name="sietch"} 12\n');
    expect(text).toContain('shardwarden_operator_reconcile_total{result="ok"} 1\n');
    // Every family once: HELP and TYPE are not repeated.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
    metrics.forgetBot('bots', 'sietch');
    const after = await metrics.registry.metrics();
    expect(after).not.toContain('sietch');
    expect(
      () =>
        new ObjectGauge({
          name: 'shardwarden_bot_shards',
          help: 'x',
          labelNames: ['bot'],
          registers: [metrics.registry],
        }),
    ).toThrow(/already been registered/);
  });
});
