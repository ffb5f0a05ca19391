// A bot's pods on the real node, end to end: the chart installed with the image built from the
// Dockerfile, Redis and Postgres as pods behind Services (reached by their cluster DNS names),
// the Discord simulator on the host reached through the node's address as a Discord API proxy
// would be, and `kubectl apply` of manifests/examples/small-bot.yaml. The kubelet's probes make
// the pods Ready, the shards identify at the simulator, a worker pod answers an interaction and
// links a wallet through its public Service, the containers run as the operator renders them,
// a deleted gateway pod's successor RESUMEs without losing an event, and removing everything
// leaves no container or sandbox on the node.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { parseAllDocuments } from 'yaml';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import {
  POSTGRES_UID,
  SERVICE_IMAGES,
  buildProjectImage,
  createAppDatabase,
  kubeBinary,
  postgresImageArchive,
  postgresReadyCommand,
  projectImageUnavailable,
  realNodeUnavailable,
  redisImageArchive,
  startAnvil,
  startControlPlane,
  startRealNode,
  waitUntil,
  type AnvilNode,
  type ControlPlane,
  type ProjectImage,
  type RealNode,
} from '../../testenv/index.js';
import { POD_HTTP_PORT } from '../../bot/runtime-contract.js';
import { QUEUES, queuePrefix } from '../../bot/queues/queue-names.js';
import { metricSum } from '../gateway/harness.js';
import { hostWitness, nothingLeft } from '../support/host-snapshot.js';
import { RELEASE_NAMESPACE, helm, installChart } from '../install/helm.js';

const RELEASE = 'sw';
const NS = 'bots';
const BOT = 'small-bot';
const EXAMPLE = 'manifests/examples/small-bot.yaml';
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** 40 guilds at 20 per recommended shard: Auto sharding runs 2 shards, in one gateway pod. */
const GUILDS = 40;
const GUILDS_PER_SHARD = 20;
const GATEWAY_PODS = `app.kubernetes.io/instance=${BOT},app.kubernetes.io/component=gateway`;
const WORKER_PODS = `app.kubernetes.io/instance=${BOT},app.kubernetes.io/component=worker`;
const execFileAsync = promisify(execFile);

const unavailable = realNodeUnavailable() ?? projectImageUnavailable();
if (unavailable) console.warn(`SKIPPING the bot-pods-on-the-real-node tests: ${unavailable}`);

interface Pod {
  metadata: { name: string; labels?: Record<string, string>; deletionTimestamp?: string; uid: string };
  status: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
    containerStatuses?: { name: string; ready: boolean; restartCount: number }[];
  };
}

const isReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

/**
 * A Deployment and Service of one container image listening on `port`, ready when `readyCommand`
 * succeeds in it (default: when the port accepts connections).
 */
function servicePod(
  name: string,
  image: string,
  port: number,
  extra: { volume?: string; uid?: number; readyCommand?: string[] } = {},
) {
  const labels = { app: name };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            terminationGracePeriodSeconds: 1,
            ...(extra.uid !== undefined && { securityContext: { runAsUser: extra.uid, fsGroup: extra.uid } }),
            containers: [
              {
                name,
                image,
                imagePullPolicy: 'IfNotPresent',
                ports: [{ containerPort: port }],
                readinessProbe: {
                  ...(extra.readyCommand
                    ? { exec: { command: extra.readyCommand } }
                    : { tcpSocket: { port } }),
                  periodSeconds: 1,
                },
                ...(extra.volume && { volumeMounts: [{ name: 'data', mountPath: extra.volume }] }),
              },
            ],
            ...(extra.volume && { volumes: [{ name: 'data', emptyDir: {} }] }),
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name },
      spec: { selector: labels, ports: [{ port, targetPort: port }] },
    },
  ];
}

/**
 * small-bot.yaml with its Secrets filled, plus what token gating needs (Postgres, a chain, the
 * public URL of the verification page) and the locally built image.
 */
function smallBotManifest(image: string, token: string, databaseUrl: string, rpcUrl: string): object[] {
  const docs = parseAllDocuments(readFileSync(EXAMPLE, 'utf8')).map(
    (d) =>
      d.toJS() as {
        kind: string;
        metadata: { name: string };
        stringData?: Record<string, string>;
        spec?: Record<string, unknown>;
      },
  );
  const secret = (name: string) => docs.find((d) => d.kind === 'Secret' && d.metadata.name === name)!;
  secret(`${BOT}-discord`).stringData = { token };
  // The example's own Redis URL: a Service `redis` in the bot's namespace, by its DNS name.
  expect(secret(`${BOT}-redis`).stringData).toEqual({ url: `redis://redis.${NS}.svc:6379` });
  const bot = docs.find((d) => d.kind === 'DiscordBot')!;
  const worker = bot.spec!.worker as Record<string, unknown>;
  bot.spec = {
    ...bot.spec,
    image,
    imagePullPolicy: 'IfNotPresent',
    database: { urlSecretRef: { name: `${BOT}-database`, key: 'url' } },
    chain: { rpcUrls: [rpcUrl] },
    worker: { ...worker, publicUrl: `http://${BOT}-worker-public.${NS}.svc` },
  };
  const database = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: `${BOT}-database` },
    type: 'Opaque',
    stringData: { url: databaseUrl },
  };
  return [...docs, database];
}

(unavailable && process.env.CI !== 'true' ? describe.skip : describe)(
  "a bot's pods on the real node (the chart, small-bot.yaml, Redis and Postgres pods)",
  () => {
    let built: ProjectImage;
    let cp: ControlPlane;
    let node: RealNode;
    let sim: DiscordSimulator;
    let anvil: AnvilNode;
    const host = hostWitness();
    /**
     * kubectl in `namespace`, without blocking the event loop: the simulator runs in this process
     * and must go on answering the pods, and timing their identifies and answers, meanwhile.
     */
    const kubectlIn = async (namespace: string, args: string[], input?: string) => {
      const run = execFileAsync(
        kubeBinary('kubectl'),
        ['--kubeconfig', cp.kubeconfigPath, '-n', namespace, ...args],
        {
          encoding: 'utf8',
          maxBuffer: 64 * 1024 * 1024,
        },
      );
      run.child.stdin?.end(input);
      return (await run).stdout;
    };
    const kubectl = (args: string[], input?: string) => kubectlIn(NS, args, input);
    /** The pods matching `selector` ('' for all) in `namespace`. */
    const pods = async (selector: string, namespace = NS) =>
      (
        JSON.parse(
          await kubectlIn(namespace, ['get', 'pods', ...(selector ? ['-l', selector] : []), '-o', 'json']),
        ) as { items: Pod[] }
      ).items;
    const botPods = async (component: 'gateway' | 'worker') =>
      (await pods(component === 'gateway' ? GATEWAY_PODS : WORKER_PODS)).filter(
        (p) => !p.metadata.deletionTimestamp,
      );
    const readyIp = async (selector: string) => {
      const ip = (await pods(selector)).find((p) => isReady(p) && !p.metadata.deletionTimestamp)?.status
        .podIP;
      if (!ip) throw new Error(`no Ready pod ${selector} with an IP`);
      return ip;
    };

    /**
     * Waits for `condition`; a timeout says why it did not hold: the namespace's pods, its warning
     * events (failed probes, pulls, mounts) and the last lines of every container's log.
     */
    const waitOrExplain = async (
      what: string,
      condition: () => Promise<boolean> | boolean,
      timeoutMs: number,
      namespace = NS,
    ) => {
      try {
        await waitUntil(what, async () => condition(), { timeoutMs, intervalMs: 1000 });
      } catch (err) {
        const k = async (args: string[]) => {
          try {
            return await kubectlIn(namespace, args);
          } catch (e) {
            return String((e as { stderr?: string }).stderr ?? e);
          }
        };
        const logs = await Promise.all(
          (await pods('', namespace)).flatMap((p) =>
            (p.status.containerStatuses ?? []).map(
              async (c) =>
                `--- ${p.metadata.name}/${c.name}:\n${await k(['logs', p.metadata.name, '-c', c.name, '--tail', '30'])}`,
            ),
          ),
        );
        const why = [
          await k(['get', 'pods', '-o', 'wide']),
          await k(['get', 'events', '--field-selector', 'type=Warning']),
          ...logs,
        ].join('\n');
        throw new Error(`${(err as Error).message}\n${why}`, { cause: err });
      }
    };
    /** The in-cluster Redis, from the host at its pod's address (no cluster DNS here). */
    const inClusterRedis = async () =>
      new Redis({
        host: await readyIp('app=redis'),
        port: 6379,
        maxRetriesPerRequest: 1,
        connectTimeout: 5_000,
      });
    /**
     * GUILD_DELETE dispatches the workers processed: their claims marked done, read from
     * Redis (unlike a worker pod's counter, it outlives a worker's restart or replacement). The
     * gateway keys each by its session and sequence, so one replayed on RESUME is one key.
     */
    const processedDeletes = async () => {
      const redis = await inClusterRedis();
      try {
        // The marks are fields of the claims' time buckets (hashes); a key may be in two of them.
        const done = new Set<string>();
        const match = `${queuePrefix({ namespace: NS, name: BOT })}:claims:*`;
        for await (const keys of redis.scanStream({ match, count: 1000 }) as AsyncIterable<string[]>)
          for (const key of keys) {
            if ((await redis.type(key)) !== 'hash') continue;
            for (const [field, mark] of Object.entries(await redis.hgetall(key)))
              if (field.startsWith('GUILD_DELETE-') && mark === 'done') done.add(field);
          }
        return done.size;
      } finally {
        redis.disconnect();
      }
    };
    /**
     * Interactions a worker took after Discord's 3 s window had closed and so did not answer
     * (the completed job's return value says `expired`): on a loaded machine a cold pod can.
     */
    const expiredInteractions = async () => {
      const queue = new Queue(QUEUES.interactions, {
        connection: await inClusterRedis(),
        prefix: queuePrefix({ namespace: NS, name: BOT }),
      });
      try {
        const jobs = await queue.getJobs(['completed']);
        return new Set(jobs.filter((j) => j.returnvalue === 'expired').map((j) => String(j.data.d.id)));
      } finally {
        await queue.close();
        await (queue.opts.connection as Redis).quit();
      }
    };
    /** Session starts the gateway pod counted, by kind (identify or resume). */
    const gatewaySessionStarts = async (kind: 'identify' | 'resume') => {
      const ip = await readyIp(GATEWAY_PODS);
      const text = await (await fetch(`http://${ip}:${POD_HTTP_PORT}/metrics`)).text();
      return metricSum(text, 'shardwarden_gateway_session_starts_total', `kind="${kind}"`);
    };
    const identified = () => sim.recorder.identifies.filter((i) => !i.refused);
    /** Whether the simulator has a resumable session with no connection, and none with one. */
    const allSessionsDetached = () => {
      const live = [...sim.gateway.sessions.values()].filter((s) => !s.invalidated);
      return live.length > 0 && live.every((s) => !s.connection);
    };

    beforeAll(async () => {
      built = buildProjectImage();
      const archives = [redisImageArchive(), postgresImageArchive()];
      cp = await startControlPlane({ controllers: true, scheduler: true, podAccess: true });
      node = await startRealNode(cp, { onLocked: host.onLocked });
      node.importImage(built.archive);
      for (const archive of archives) node.importImage(archive);
      // On the node's address, so pods reach it as they would a Discord API proxy. Sessions stay
      // resumable for 10 minutes (Discord: about 2), since a replaced pod on a loaded machine may
      // take longer than Discord's window to start; the interaction window is widened likewise
      // (see the interaction below). The identify window is 4 s where the gateway spaces its
      // identifies 5.25 s apart (Discord's 5 s and a margin): the simulator times an identify when
      // its event loop gets to it, which a loaded machine delays.
      sim = await DiscordSimulator.start({
        host: node.nodeIp,
        seed: 14,
        guilds: GUILDS,
        guildsPerRecommendedShard: GUILDS_PER_SHARD,
        gateway: { sessionTtlMs: 600_000, identifyWindowMs: 4_000 },
        interactionResponseWindowMs: 15_000,
      });
      // The chain the workers read balances from, on the host like the simulator.
      anvil = await startAnvil({ host: node.nodeIp });
    }, 1_800_000);
    afterAll(async () => {
      // Each stopped whatever the others do; the node first, as it holds the machine-wide lock.
      const stopped = await Promise.allSettled([node?.stop(), sim?.stop(), anvil?.stop()]);
      const more = await Promise.allSettled([cp?.stop()]);
      const failed = [...stopped, ...more].filter((r) => r.status === 'rejected');
      if (failed.length)
        throw new AggregateError(
          failed.map((r) => r.reason),
          'stopping the test environment',
        );
    }, 300_000);

    test('helm install with the Discord API URL pointing at the simulator: the operator pod becomes Ready', async () => {
      const [repository, tag] = built.image.split(':');
      const out = installChart(cp.kubeconfigPath, RELEASE, [
        `image.repository=${repository}`,
        `image.tag=${tag}`,
        'replicaCount=1',
        `discordApiUrl=${sim.apiUrl}`,
      ]);
      expect(out).toContain('STATUS: deployed');
      await waitOrExplain(
        'the operator pod Ready',
        async () => (await pods(`app.kubernetes.io/instance=${RELEASE}`, RELEASE_NAMESPACE)).some(isReady),
        600_000,
        RELEASE_NAMESPACE,
      );
    }, 900_000);

    test('Redis and Postgres run as pods behind Services', async () => {
      await kubectlIn('default', ['create', 'namespace', NS]);
      const objects = [
        ...servicePod('redis', SERVICE_IMAGES.redis, 6379),
        // Ready once it accepts queries: the port opens while the server is still starting up.
        ...servicePod('postgres', SERVICE_IMAGES.postgres, 5432, {
          volume: '/var/lib/postgresql/data',
          uid: POSTGRES_UID,
          readyCommand: postgresReadyCommand(),
        }),
      ];
      await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }));
      await waitOrExplain(
        'Redis and Postgres Ready',
        async () =>
          (
            await Promise.all(
              ['redis', 'postgres'].map(async (app) => (await pods(`app=${app}`)).some(isReady)),
            )
          ).every(Boolean),
        300_000,
      );
    }, 600_000);

    test('kubectl apply of small-bot.yaml: gateway and worker pods Ready through their probes, each shard identified once, an interaction answered by a worker pod', async () => {
      // The app database, made from the host at the Postgres pod's address; the bot reaches the
      // same server by its Service name.
      const appUrl = await createAppDatabase({
        url: `postgres://postgres@${await readyIp('app=postgres')}:5432/postgres`,
        port: 5432,
        close: async () => undefined,
      });
      const databaseUrl = appUrl.replace('@127.0.0.1:5432/', `@postgres.${NS}.svc:5432/`);
      await kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'List',
          items: smallBotManifest(built.image, sim.token, databaseUrl, anvil.url),
        }),
      );
      await waitOrExplain(
        'the gateway pod and a worker pod Ready',
        async () => (await botPods('gateway')).some(isReady) && (await botPods('worker')).some(isReady),
        600_000,
      );
      expect((await botPods('gateway')).map((p) => p.metadata.name)).toEqual([`${BOT}-gateway-0`]);
      // Every shard of the plan identified, each exactly once.
      await waitOrExplain('both shards identified', () => identified().length >= 2, 120_000);
      const shardsIdentified = () =>
        identified()
          .map((i) => `${i.shardId}/${i.shardCount}`)
          .sort();
      expect(shardsIdentified()).toEqual(['0/2', '1/2']);

      // An interaction at the simulator, answered by a worker pod. The simulator accepts a first
      // response only within its window: Discord's is 3 s, widened to 15 s here because the
      // first command of a cold pod on a loaded 2-core machine may miss 3 s (docs/benchmarks.md
      // measures the real latency).
      const guild = [...sim.world.guilds.values()][0]!;
      const member = String(BigInt(guild.id) + 1n);
      const ask = () => sim.injectInteraction({ guildId: guild.id, userId: member, command: 'verify' });
      let inj = ask();
      let asked = 1;
      const responses = () => sim.recorder.interactionResponses.filter((x) => x.interactionId === inj.id);
      // A deferral (type 5) is followed by the reply as an edit of the original response.
      const texts = () =>
        responses()
          .filter((x) => x.type === 4 || x.kind === 'edit-original')
          .map((x) => (x.data as { content?: string } | undefined)?.content ?? '');
      await waitOrExplain(
        '/verify answered',
        async () => {
          if (texts().length > 0) return true;
          // A worker that took it after the 3 s window rightly left it unanswered, as Discord
          // would refuse the answer: the user asks again (a few times at most; every one late
          // would be a defect, not load).
          if (asked < 5 && (await expiredInteractions()).has(inj.id)) {
            inj = ask();
            asked += 1;
          }
          return false;
        },
        120_000,
      );
      expect(responses()[0]!.latencyMs).toBeLessThan(15_000);
      expect(texts()).toEqual([expect.stringContaining('/verify/')]);
      const reply = texts()[0]!;
      expect(reply).toContain(`http://${BOT}-worker-public.${NS}.svc/verify/${guild.id}/`);

      // The wallet link, through the worker's public Service (its ClusterIP: the host has no
      // cluster DNS, but kube-proxy's rules route it as for any pod). Fetched until the Service
      // answers: its endpoints and kube-proxy's rules may lag the worker pod's readiness.
      const clusterIp = await kubectl([
        'get',
        'service',
        `${BOT}-worker-public`,
        '-o',
        'jsonpath={.spec.clusterIP}',
      ]);
      const url = /https?:\/\/\S+?(\/verify\/\d+\/[0-9a-f]{32})/.exec(reply)![1]!;
      const link = `http://${clusterIp}${url}`;
      let message = '';
      await waitOrExplain(
        'the verification page through the public Service',
        async () => {
          const page = await fetch(link, { headers: { accept: 'application/json' } });
          if (!page.ok) throw new Error(`GET ${link}: ${page.status} ${await page.text()}`);
          ({ message } = (await page.json()) as { message: string });
          return true;
        },
        120_000,
      );
      expect(message).toContain(member);
      const wallet = privateKeyToAccount(generatePrivateKey());
      const linked = await fetch(link, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ address: wallet.address, signature: await wallet.signMessage({ message }) }),
      });
      expect(linked.status).toBe(200);

      // Later still, each shard identified once, as the gateway itself counted.
      expect(shardsIdentified()).toEqual(['0/2', '1/2']);
      expect(await gatewaySessionStarts('identify')).toBe(2);
    }, 1_200_000);

    test('inside a bot container: uid 10001, read-only root filesystem, no capabilities, no ServiceAccount token', async () => {
      for (const [pod, container] of [
        [`${BOT}-gateway-0`, 'gateway'],
        [(await botPods('worker'))[0]!.metadata.name, 'worker'],
      ] as const) {
        const exec = (cmd: string) => kubectl(['exec', pod, '-c', container, '--', 'sh', '-c', cmd]);
        expect({ pod, uid: (await exec('id -u')).trim() }).toEqual({ pod, uid: '10001' });
        expect(await exec('touch /app/x 2>&1 || true')).toMatch(/Read-only file system/);
        expect(await exec('grep CapEff /proc/self/status')).toMatch(/^CapEff:\s+0{16}\s*$/);
        expect((await exec(`test -e ${TOKEN_DIR} && echo present || echo absent`)).trim()).toBe('absent');
      }
    }, 300_000);

    test('kubectl delete pod of the gateway: the new pod RESUMEs its shards and every event sent meanwhile is processed once', async () => {
      const identifies = identified().length;
      const resumes = sim.recorder.resumes.length;
      const before = await processedDeletes();
      const old = (await botPods('gateway'))[0]!.metadata.uid;
      // GUILD_DELETE with `unavailable` (an outage), each to the shard of its guild: forwarded,
      // and a no-op for the workers.
      const outage = (n: number) =>
        sim.stream({
          type: 'GUILD_DELETE',
          count: n,
          ratePerSecond: 20,
          make: (_i, guildId) => ({ id: guildId, unavailable: true }),
        });
      await outage(20);
      await kubectl(['delete', 'pod', `${BOT}-gateway-0`, '--wait=false']);
      // Sent once the old pod has let go of its sessions and before its successor resumes them,
      // started in the same tick as the check: at least its first event can reach the new pod
      // only by the RESUME's replay.
      let gap: Promise<number> | undefined;
      await waitUntil(
        'the old gateway pod let go of its sessions',
        async () => {
          if (allSessionsDetached()) gap = outage(40);
          return gap !== undefined;
        },
        { timeoutMs: 300_000, intervalMs: 100 },
      );
      await gap;
      await waitOrExplain(
        'a new gateway pod Ready',
        async () => (await botPods('gateway')).some((p) => p.metadata.uid !== old && isReady(p)),
        600_000,
      );
      await outage(20);
      // Each of the 80 events is one claim key, marked done once a worker ran it (a duplicate of
      // an event would be a key of another session: an IDENTIFY, checked below).
      let processed = 0;
      await waitOrExplain(
        '80 events processed',
        async () => (processed = (await processedDeletes()) - before) >= 80,
        180_000,
      );
      expect(processed).toBe(80);
      expect(identified().length).toBe(identifies);
      const resumed = sim.recorder.resumes.slice(resumes);
      expect(new Set(resumed.map((r) => r.shardId))).toEqual(new Set([0, 1]));
      expect(resumed.reduce((sum, r) => sum + r.replayed, 0)).toBeGreaterThan(0);
    }, 900_000);

    test('spec.sharding changed (2 to 3 shards): a BlueGreen reshard with real pods; every interaction sent during it answered exactly once', async () => {
      const generation = () =>
        kubectl([
          'get',
          'discordbot',
          BOT,
          '-o',
          'jsonpath={.status.gateway.generation}/{.status.reshard.phase}',
        ]);
      expect(await generation()).toMatch(/^1\//);
      const since = identified().length;
      const violations = sim.recorder.violations.length;
      await kubectl([
        'patch',
        'discordbot',
        BOT,
        '--type',
        'merge',
        '-p',
        '{"spec":{"sharding":{"mode":"Fixed","shards":3}}}',
      ]);
      // Interactions (keyed by their id, so the queue takes each once whichever generation
      // delivers it), each from another member (the command has a per-member cooldown), one a
      // second until the new generation has taken over.
      const guilds = [...sim.world.guilds.values()];
      const sent: { id: string }[] = [];
      /** Gateway pods seen running side by side (BlueGreen: both generations at some point). */
      const together = new Set<string>();
      await waitOrExplain(
        'the reshard Complete at generation 2',
        async () => {
          const g = guilds[sent.length % guilds.length]!;
          const userId = String(BigInt(g.id) + 1n + BigInt(Math.floor(sent.length / guilds.length)));
          sent.push(sim.injectInteraction({ guildId: g.id, userId, command: 'verify' }));
          together.add(
            (await botPods('gateway'))
              .map((p) => p.metadata.name)
              .sort()
              .join(),
          );
          return (await generation()) === '2/Complete';
        },
        600_000,
      );
      const answers = (id: string) =>
        sim.recorder.interactionResponses.filter((r) => r.interactionId === id && r.kind === 'callback')
          .length;
      // Each one answered, or taken by a worker after Discord's 3 s window and so rightly left
      // unanswered (a loaded machine starting the new generation's pods can delay one): none lost.
      let expired = new Set<string>();
      await waitOrExplain(
        'every interaction answered or expired',
        async () => {
          expired = await expiredInteractions();
          return sent.every((x) => answers(x.id) > 0 || expired.has(x.id));
        },
        120_000,
      );
      expect(sent.filter((s) => answers(s.id) !== (expired.has(s.id) ? 0 : 1))).toEqual([]);
      expect(expired.size).toBeLessThan(sent.length);
      // The simulator refuses a second answer before recording it, as a violation: the proof of
      // "exactly once". (Identify spacing is the gateway's own test's business, not this one's.)
      expect(
        sim.recorder.violations.slice(violations).filter((v) => v.kind.startsWith('interaction-')),
      ).toEqual([]);
      expect([...together]).toContain(`${BOT}-gateway-0,${BOT}-gateway-g2-0`);
      // The new generation's pod identified each of the 3 shards once; the old one is gone.
      expect(
        identified()
          .slice(since)
          .map((i) => `${i.shardId}/${i.shardCount}`)
          .sort(),
      ).toEqual(['0/3', '1/3', '2/3']);
      await waitOrExplain(
        'only the new generation running',
        async () => (await botPods('gateway')).map((p) => p.metadata.name).join() === `${BOT}-gateway-g2-0`,
        300_000,
      );
    }, 900_000);

    test('helm uninstall and deleting the namespace leave no pod, container or sandbox on the node', async () => {
      const dnsContainers = () =>
        node.crictl(['ps', '-a', '-q', '--label', 'io.kubernetes.pod.namespace=kube-system']);
      expect(
        helm([
          'uninstall',
          RELEASE,
          '--kubeconfig',
          cp.kubeconfigPath,
          '--namespace',
          RELEASE_NAMESPACE,
          '--wait',
        ]),
      ).toContain('uninstalled');
      await kubectlIn('default', ['delete', 'namespace', NS, '--wait=true', '--timeout=600s']);
      const left = async () => ({
        pods: (await kubectlIn('default', ['get', 'pods', '-A', '-o', 'name']))
          .split('\n')
          .filter((p) => p && !p.includes('coredns')),
        containers: node
          .crictl(['ps', '-a', '-q'])
          .split('\n')
          .filter((id) => id && !dnsContainers().includes(id)),
        sandboxes: node.crictl(['pods', '-q']).split('\n').filter(Boolean).length,
      });
      await waitOrExplain(
        'no pod, container or sandbox but CoreDNS',
        async () => {
          const l = await left();
          return l.pods.length === 0 && l.containers.length === 0 && l.sandboxes === 1;
        },
        300_000,
        RELEASE_NAMESPACE,
      );
      expect(await left()).toEqual({ pods: [], containers: [], sandboxes: 1 });
    }, 900_000);

    test('stopping the node leaves no process, mount, network namespace, link, iptables rule or cgroup', async () => {
      await node.stop({ beforeRelease: host.beforeRelease });
      const left = host.left();
      expect(left).toEqual(nothingLeft(left));
    }, 300_000);
  },
);
