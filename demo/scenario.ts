// The story the demo tells, one step after another, each narrated with progress lines:
// shards identify and become READY, interactions are answered, a burst scales the workers up
// and down, added guilds force a BlueGreen reshard, and at the end every event is accounted for.
import { Redis } from 'ioredis';
import { messagePayload } from '../discord-simulator/index.js';
import { GENERATION_LABEL } from '../operator/rendering/labels.js';
import { botKey } from '../bot/queues/queue-names.js';
import { ledgerKeys } from './event-ledger.js';
import { demoQueries, scrapedHeadlines } from './headline.js';
import { DEMO_BOT, DEMO_NAMESPACE } from './manifest.js';
import type { DemoOptions } from './options.js';
import type { DemoStack } from './stack.js';

type Say = (line: string) => void;

export interface DemoResult {
  sent: number;
  processed: number;
  lost: number;
  duplicated: number;
  interactions: { answered: number; p50Ms: number; p95Ms: number; maxMs: number };
  maxWorkers: number;
  /** Dispatches the simulator found no session for (would be lost at Discord), after the stream started. */
  undelivered: number;
  reshard: 'complete' | 'not-available' | 'skipped';
  /** Unix seconds: from apply to the end, the window of the headline table (and of the plots). */
  window: { start: number; end: number };
}

interface BotStatus {
  shards?: number;
  recommendedShards?: number;
  plan?: { shards?: number; pods?: number };
  gateway?: { generation?: number; pods?: number; readyPods?: number };
  workers?: { replicas?: number; readyReplicas?: number; backlog?: number };
  reshard?: { phase?: string; fromShards?: number; toShards?: number; [k: string]: unknown };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new Error('aborted'))), { once: true });
  });

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function runScenario(
  stack: DemoStack,
  options: DemoOptions,
  say: Say,
  signal: AbortSignal,
): Promise<DemoResult> {
  const { cp, sim } = stack;
  const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 3 });
  const keys = ledgerKeys((...parts) => botKey({ namespace: DEMO_NAMESPACE, name: DEMO_BOT }, ...parts));
  const status = (): BotStatus =>
    (
      JSON.parse(cp.kubectl(['get', 'dbot', DEMO_BOT, '-n', DEMO_NAMESPACE, '-o', 'json'])) as {
        status?: BotStatus;
      }
    ).status ?? {};
  const until = async (
    what: string,
    check: () => Promise<boolean> | boolean,
    timeoutMs: number,
    everyMs = 500,
  ) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (signal.aborted) throw new Error('aborted');
      if (stack.operator.exited())
        throw new Error(`the operator exited while waiting for ${what}; log ${stack.operator.logFile}`);
      try {
        if (await check()) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
      await sleep(everyMs, signal);
    }
  };
  const gatewayGenerations = () => {
    const pods = JSON.parse(
      cp.kubectl([
        'get',
        'pods',
        '-n',
        DEMO_NAMESPACE,
        '-l',
        `app.kubernetes.io/instance=${DEMO_BOT},app.kubernetes.io/component=gateway`,
        '-o',
        'json',
      ]),
    ) as { items: { metadata: { labels?: Record<string, string> } }[] };
    return new Set(pods.items.map((p) => p.metadata.labels?.[GENERATION_LABEL] ?? '?'));
  };
  /** Per identify bucket, when each shard of a shard count identified (the simulator's record). */
  const sayBuckets = (shardCount: number) => {
    const identifies = sim.recorder.identifies.filter((i) => i.shardCount === shardCount && !i.refused);
    const first = Math.min(...identifies.map((i) => i.at));
    const buckets = new Map<number, string[]>();
    for (const i of identifies.sort((a, b) => a.at - b.at))
      buckets.set(i.bucket, [
        ...(buckets.get(i.bucket) ?? []),
        `shard ${i.shardId} +${((i.at - first) / 1000).toFixed(1)}s`,
      ]);
    for (const [bucket, list] of [...buckets].sort((a, b) => a[0] - b[0]))
      say(`  identify bucket ${bucket}: ${list.join(', ')}`);
  };
  /**
   * The scenario can end a moment after the reshard: the new generation's last pod may not have
   * been scraped yet, nor the old one's removal seen. The table and the plots end once Prometheus
   * has every planned shard READY in one generation and one worker; after a minute they end
   * anyway, saying so.
   */
  const untilScraped = async (shards: number) => {
    const prometheus = stack.prometheus;
    const bot = { namespace: DEMO_NAMESPACE, name: DEMO_BOT };
    const q = demoQueries(bot, 4 * prometheus.scrapeIntervalSeconds);
    await until(
      `Prometheus to scrape all ${shards} shards READY in one generation and 1 worker`,
      async () => {
        const [ready, generations, replicas] = await Promise.all([
          prometheus.query(q.shardsReady),
          prometheus.query(q.shardsReadyByGeneration),
          prometheus.query(q.workerReplicas),
        ]);
        return (
          Number(ready[0]?.values[0]?.[1]) === shards &&
          generations.length === 1 &&
          Number(replicas[0]?.values[0]?.[1]) === 1
        );
      },
      60_000,
      1_000,
    ).catch((err: Error) => {
      if (signal.aborted) throw err;
      say(`  ${err.message}: the table and the plots may miss the last changes`);
    });
  };
  const gateways = () => stack.pods().filter((p) => p.component === 'gateway');
  const workers = () => stack.pods().filter((p) => p.component === 'worker');
  /** The workers' scale-down: `replicas()` (the status' count) back at 1 and a single worker pod. */
  const untilOneWorker = (replicas: () => number | undefined) =>
    until(
      'the workers to scale back to 1',
      () => replicas() === 1 && workers().length === 1,
      (options.scaleDownSeconds + 60) * 1000,
    );

  // ---- the event stream: every event has its own id, recorded to count losses exactly ----
  const sentIds: string[] = [];
  const sentAt: number[] = [];
  const guildIds = () => [...sim.world.guilds.keys()];
  const channelOf = new Map<string, string>();
  const sendEvent = (guildId: string) => {
    let channel = channelOf.get(guildId);
    if (!channel) {
      channel = sim.world.firstChannelId(sim.world.guild(guildId)!);
      channelOf.set(guildId, channel);
    }
    const id = sim.world.nextId();
    sentIds.push(id);
    sentAt.push(Date.now());
    sim.dispatch('MESSAGE_CREATE', messagePayload({ id, guildId, channelId: channel }), { guildId });
  };
  let streaming = true;
  let stream: Promise<void> = Promise.resolve();
  // Sent only once every shard is READY: Discord itself drops dispatches for a shard without a session.
  const startStream = () => {
    stream = (async () => {
      const start = Date.now();
      for (let n = 0; streaming; n++) {
        const due = start + (n * 1000) / options.eventRate;
        // The clock read once per wait: read twice, a late second read gave a negative delay
        // (Node's TimeoutNegativeWarning in the narration).
        for (let wait = due - Date.now(); streaming && wait > 0; wait = due - Date.now())
          await new Promise((r) => setTimeout(r, Math.min(50, wait)));
        if (!streaming) break;
        const ids = guildIds();
        sendEvent(ids[n % ids.length]!);
      }
    })();
  };
  const stopStream = async () => {
    streaming = false;
    await stream;
  };

  try {
    // ---- 1. the operator plans, the pods start (on the real node, or kwok and the pod runner) ----
    say('step 1: the operator plans the shards; gateway shards identify and become READY');
    const t0 = Date.now();
    await until('the operator to plan the bot', () => (status().plan?.shards ?? 0) > 0, 60_000);
    const plan = status();
    say(
      `  Discord recommends ${plan.recommendedShards} shard(s) for ${sim.world.guilds.size} guilds; guildsPerShard ${options.guildsPerShard} → plan: ${plan.plan?.shards} shards on ${plan.plan?.pods} gateway pod(s)`,
    );
    await until(
      'every gateway pod and a worker to be ready',
      () =>
        gateways().length === plan.plan?.pods &&
        gateways().every((g) => g.ready) &&
        workers().some((w) => w.ready),
      stack.podsStartMs,
    );
    const shards = plan.plan!.shards!;
    sayBuckets(shards);
    say(
      `  all ${shards} shards READY, ${gateways().length} gateway pod(s) and ${workers().length} worker(s) serving, ${((Date.now() - t0) / 1000).toFixed(1)} s after apply; identify violations: ${sim.recorder.violations.filter((v) => v.kind === 'identify-concurrency').length}`,
    );
    for (const p of stack.pods())
      say(`    ${p.name.padEnd(24)} ${p.where}  metrics http://${p.metrics ?? '-'}/metrics`);

    // ---- 2. interactions: injected by "Discord", answered by a worker through REST ----
    say(
      `step 2: ${options.interactions} /ping interactions through gateway → BullMQ → worker → Discord REST`,
    );
    const ids = guildIds();
    const latencies: number[] = [];
    await Promise.all(
      Array.from({ length: options.interactions }, async (_, i) => {
        await sleep(i * 50, signal);
        const guildId = ids[(i * 7919) % ids.length]!;
        const { response } = sim.injectInteraction({
          guildId,
          userId: String(BigInt(guildId) + 1n),
          command: 'ping',
        });
        const r = await Promise.race([response, sleep(5_000).then(() => undefined)]);
        if (r) latencies.push(r.latencyMs);
      }),
    );
    latencies.sort((a, b) => a - b);
    const inter = {
      answered: latencies.length,
      p50Ms: percentile(latencies, 50),
      p95Ms: percentile(latencies, 95),
      maxMs: latencies.at(-1) ?? 0,
    };
    say(
      `  answered ${inter.answered}/${options.interactions}; round trip p50 ${inter.p50Ms} ms, p95 ${inter.p95Ms} ms, max ${inter.maxMs} ms (Discord allows 3000)`,
    );

    // ---- 3. steady traffic ----
    const undeliveredBefore = sim.recorder.counters.dispatchesUndelivered;
    say(
      `step 3: ${options.eventRate} MESSAGE_CREATE events/s for ${options.durationSeconds} s (the stream goes on to the end)`,
    );
    startStream();
    await sleep(options.durationSeconds * 1000, signal);
    say(`  sent ${sentIds.length}, processed ${await redis.scard(keys.processed)}`);

    // ---- 4. a burst: the backlog scales the workers up, then down after the window ----
    let maxWorkers = workers().length;
    if (options.burst > 0) {
      say(
        `step 4: a burst of ${options.burst} events; the Builtin autoscaler follows the BullMQ backlog (target 5 jobs per worker, a job being a batch of up to 100 events; max 4)`,
      );
      let last = status().workers?.replicas ?? 1;
      const watch = setInterval(() => {
        try {
          const s = status();
          maxWorkers = Math.max(maxWorkers, workers().length);
          if (s.workers?.replicas !== undefined && s.workers.replicas !== last) {
            say(
              `  workers ${last} → ${s.workers.replicas} (backlog ${s.workers.backlog ?? '?'}; ${workers().filter((w) => w.ready).length} worker pod(s) ready)`,
            );
            last = s.workers.replicas;
          }
        } catch {
          /* a transient kubectl error; the next tick tries again */
        }
      }, 500);
      try {
        const ids2 = guildIds();
        for (let i = 0; i < options.burst; i++) {
          sendEvent(ids2[i % ids2.length]!);
          if (i % 500 === 499) await new Promise((r) => setImmediate(r));
        }
        await until('the workers to scale up', () => last > 1, 30_000);
        await until(
          'the backlog to drain',
          async () => (await redis.scard(keys.processed)) >= sentIds.length - options.eventRate * 2,
          120_000,
        );
        say(`  backlog drained; scale-down waits ${options.scaleDownSeconds} s of lower demand`);
        // As narrated: the watch above has said `workers N → 1` by then.
        await untilOneWorker(() => last);
      } finally {
        clearInterval(watch);
      }
    }

    // ---- 5. guilds added until Discord recommends more shards: a BlueGreen reshard ----
    let reshard: DemoResult['reshard'] = 'skipped';
    if (options.reshard) {
      const crd = JSON.parse(cp.kubectl(['get', 'crd', 'discordbots.shardwarden.io', '-o', 'json'])) as {
        spec: {
          versions: {
            schema: { openAPIV3Schema: { properties: { status: { properties: Record<string, unknown> } } } };
          }[];
        };
      };
      const supported = crd.spec.versions.some(
        (v) => 'reshard' in v.schema.openAPIV3Schema.properties.status.properties,
      );
      if (!supported) {
        reshard = 'not-available';
        say(
          'step 5: SKIPPED: this operator has no BlueGreen resharding yet (no status.reshard in the DiscordBot CRD); a changed shard count would roll the gateway in place',
        );
      } else {
        const before = status();
        const fromShards = before.plan!.shards!;
        const add = Math.max(1, 1000 * (before.recommendedShards ?? 1) + 1 - sim.world.guilds.size);
        say(
          `step 5: ${add} guild${add === 1 ? '' : 's'} join${add === 1 ? 's' : ''}; Discord's recommendation grows and the operator reshards BlueGreen (refresh every 10 s)`,
        );
        sim.addGuilds(add);
        say(
          `  simulator now recommends ${sim.recommendedShards()} shard(s) for ${sim.world.guilds.size} guilds`,
        );
        let phase = '';
        let both = false;
        const tr = Date.now();
        await until(
          'the reshard to complete',
          () => {
            const s = status();
            const generations = gatewayGenerations();
            if (generations.size > 1 && !both) {
              both = true;
              say(
                `  generations ${[...generations].sort().join(' and ')} run side by side (${gateways().length} gateway pods)`,
              );
            }
            const p = String(s.reshard?.phase ?? '');
            if (p && p !== phase) {
              phase = p;
              say(`  reshard phase ${p} (+${((Date.now() - tr) / 1000).toFixed(1)} s)`);
            }
            return (
              p === 'Complete' &&
              (s.plan?.shards ?? 0) > fromShards &&
              gateways().every((g) => g.ready) &&
              generations.size === 1
            );
          },
          // Two rounds of pods: the new generation's, then the old one's removal.
          2 * stack.podsStartMs,
          1_000,
        );
        const after = status();
        say(
          `  reshard complete: ${fromShards} → ${after.plan?.shards} shards, gateway generation ${after.gateway?.generation}, ${gateways().length} gateway pod(s), ${((Date.now() - tr) / 1000).toFixed(1)} s`,
        );
        sayBuckets(after.plan!.shards!);
        reshard = 'complete';
      }
    }

    // ---- 6. the count ----
    await stopStream();
    say(`step 6: stream stopped after ${sentIds.length} events; waiting for the workers to finish`);
    let processed = 0;
    let lastChange = Date.now();
    await until(
      'every event to be processed',
      async () => {
        const n = await redis.scard(keys.processed);
        if (n !== processed) {
          processed = n;
          lastChange = Date.now();
        }
        return n >= sentIds.length || Date.now() - lastChange > 15_000;
      },
      180_000,
    );
    // A loaded machine can build a backlog again while the new generation starts; the end state
    // is one worker, as after step 4.
    if ((status().workers?.replicas ?? 1) > 1 || workers().length > 1) {
      say(`  the workers scaled up again during the reshard; waiting for them to scale back to 1`);
      await untilOneWorker(() => status().workers?.replicas);
    }
    let found = 0;
    const lostAt: number[] = [];
    for (let i = 0; i < sentIds.length; i += 5000) {
      const flags = await redis.smismember(keys.processed, ...sentIds.slice(i, i + 5000));
      flags.forEach((f, j) => {
        if (f === 1) found += 1;
        else lostAt.push(sentAt[i + j]!);
      });
    }
    if (lostAt.length)
      say(
        `  ${lostAt.length} event(s) never processed, sent between +${((Math.min(...lostAt) - performance.timeOrigin) / 1000).toFixed(1)} s and +${((Math.max(...lostAt) - performance.timeOrigin) / 1000).toFixed(1)} s (the clock on the left)`,
      );
    const duplicated = Number((await redis.get(keys.duplicates)) ?? 0);
    // The longest stretch in which no event was forwarded, by gateway receive time: a reshard
    // that dropped sessions or a cut-over before the new generation served would show here.
    const received = (await redis.zrangebyscore(keys.receivedAt, '-inf', '+inf', 'WITHSCORES'))
      .filter((_, i) => i % 2 === 1)
      .map(Number);
    let gap = { ms: 0, at: 0 };
    for (let i = 1; i < received.length; i++)
      if (received[i]! - received[i - 1]! > gap.ms)
        gap = { ms: received[i]! - received[i - 1]!, at: received[i - 1]! };
    say(
      `  longest gap in forwarding: ${gap.ms} ms (at +${((gap.at - performance.timeOrigin) / 1000).toFixed(1)} s; the stream sends one event every ${Math.round(1000 / options.eventRate)} ms)`,
    );
    say('kubectl get dbot -n ' + DEMO_NAMESPACE);
    for (const line of cp.kubectl(['get', 'dbot', '-n', DEMO_NAMESPACE]).trimEnd().split('\n'))
      say(`  ${line}`);
    say('metrics (Prometheus text) while it runs:');
    say(`  operator  http://127.0.0.1:${stack.operatorPort}/metrics`);
    for (const p of stack.pods()) say(`  ${p.name.padEnd(24)} http://${p.metrics ?? '-'}/metrics`);
    const bot = { namespace: DEMO_NAMESPACE, name: DEMO_BOT };
    await untilScraped(status().plan?.shards ?? 0);
    say(
      `Prometheus ${stack.prometheus.url} scraped, from apply to now (dashboards: charts/shardwarden/dashboards):`,
    );
    const window = { start: t0 / 1000, end: Date.now() / 1000 };
    for (const line of await scrapedHeadlines(stack.prometheus, bot, window.start, window.end))
      say(`  ${line}`);
    return {
      sent: sentIds.length,
      processed: found,
      lost: sentIds.length - found,
      duplicated,
      interactions: inter,
      maxWorkers,
      undelivered: sim.recorder.counters.dispatchesUndelivered - undeliveredBefore,
      reshard,
      window,
    };
  } finally {
    streaming = false;
    await stream.catch(() => undefined);
    redis.disconnect();
  }
}
