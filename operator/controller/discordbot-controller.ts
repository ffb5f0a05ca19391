// Wires informers to the work queue and the reconciler: DiscordBots, the Secrets they
// reference and the objects they own all map to the owning bot's key; a periodic resync
// reconciles every bot even when nothing was heard. The caches hold only what reconcile reads
// (cache-transforms.ts); the values of referenced Secrets are read just before a reconcile.
import type { KubeConfig, KubernetesObject, V1Deployment, V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../../bot/observability/logger.js';
import { GROUP, PLURAL, VERSION } from '../api/v1alpha1/schema.js';
import type { DiscordBot } from '../api/v1alpha1/types.js';
import type { OperatorConfig } from '../config/config.js';
import { BacklogReader } from '../autoscaling/backlog-reader.js';
import { GatewayBotCache } from '../discord/gateway-bot.js';
import { Cluster, describeError } from '../kube/cluster.js';
import { KubeClient } from '../kube/api-client.js';
import { collectionPath, namedPath } from '../kube/resources.js';
import type { OperatorMetrics } from '../metrics/operator-metrics.js';
import { DiscordBotReconciler, type OwnedKind } from '../reconciler/discordbot-reconciler.js';
import { WorkerScaling } from '../reconciler/worker-scaling.js';
import { MANAGED_BY } from '../rendering/labels.js';
import { secretMetadata, slimDeployment, slimObject } from './cache-transforms.js';
import { ResilientInformer, type InformerOptions } from './informers.js';
import { referencedSecretNames, SecretValues } from './secret-values.js';
import { WorkQueue, type Priority } from './work-queue.js';

const OWNED_SELECTOR = `app.kubernetes.io/managed-by=${MANAGED_BY}`;

export class DiscordBotController {
  private readonly bots: ResilientInformer<DiscordBot>[] = [];
  private readonly secrets: ResilientInformer<V1Secret>[] = [];
  private readonly owned = new Map<OwnedKind, ResilientInformer<KubernetesObject>[]>();
  private readonly queue: WorkQueue;
  private readonly secretValues: SecretValues;
  /** One Redis connection per Builtin-autoscaled bot. */
  private readonly backlog = new BacklogReader();
  private resyncTimer?: NodeJS.Timeout;
  private running = false;
  /** Closes the connection pool this controller made (none when it was given a client). */
  private readonly closeClient: () => void;

  /**
   * `given`: the operator's client, or (tests) a `@kubernetes/client-node` KubeConfig whose
   * current context a client of our own is made from.
   */
  constructor(
    given: KubeClient | KubeConfig,
    private readonly config: OperatorConfig,
    private readonly metrics: OperatorMetrics,
    private readonly log: Logger,
  ) {
    const client = given instanceof KubeClient ? given : KubeClient.fromKubeConfig(given);
    this.closeClient = client === given ? () => undefined : () => client.close();
    const namespaces = config.watchNamespaces.length ? config.watchNamespaces : [undefined];
    const count = (verb: string) => metrics.apiRequests.inc({ verb });
    const informer = <T extends KubernetesObject>(
      path: string,
      onChange: (obj: T, kind: 'add' | 'update' | 'delete') => void,
      transform: (obj: T) => T,
      options: Pick<InformerOptions<T>, 'labelSelector' | 'metadataOnly' | 'indexes'> = {},
    ) =>
      new ResilientInformer<T>(client, path, (kind, obj) => onChange(obj, kind), log, {
        ...options,
        onList: () => count('list'),
        transform,
      });

    for (const ns of namespaces) {
      this.bots.push(
        informer<DiscordBot>(
          collectionPath(`${GROUP}/${VERSION}`, PLURAL, ns),
          (bot) => {
            this.enqueue(bot.metadata.namespace, bot.metadata.name);
            // Whether a bot's pods own the keys of releases before namespaced keys depends on
            // the other bots of its name (ENV.legacyKeys): they look again too.
            for (const other of this.botsNamed(bot.metadata.name))
              this.enqueue(other.metadata.namespace, other.metadata.name);
          },
          slimObject,
          { indexes: { byName: true } },
        ),
      );
      this.secrets.push(
        informer<V1Secret>(
          collectionPath('v1', 'secrets', ns),
          (secret, kind) => {
            if (kind === 'delete')
              this.secretValues.forget(secret.metadata?.namespace, secret.metadata?.name);
            this.enqueueBotsUsingSecret(secret);
          },
          secretMetadata,
          // Their values are never cached (secret-values.ts reads the few a bot references).
          { metadataOnly: true },
        ),
      );
      const ownedSpecs: [OwnedKind, string][] = [
        ['StatefulSet', collectionPath('apps/v1', 'statefulsets', ns)],
        ['Deployment', collectionPath('apps/v1', 'deployments', ns)],
        ['Service', collectionPath('v1', 'services', ns)],
        ['PodDisruptionBudget', collectionPath('policy/v1', 'poddisruptionbudgets', ns)],
        ['ConfigMap', collectionPath('v1', 'configmaps', ns)],
      ];
      for (const [kind, path] of ownedSpecs) {
        const inf = informer<KubernetesObject>(
          path,
          (obj) => this.enqueueOwner(obj),
          kind === 'Deployment' ? (d) => slimDeployment(d as V1Deployment) : slimObject,
          { labelSelector: OWNED_SELECTOR, indexes: { byOwner: true } },
        );
        this.owned.set(kind, [...(this.owned.get(kind) ?? []), inf]);
      }
    }

    const find = <T extends KubernetesObject>(infs: ResilientInformer<T>[], ns: string, name: string) => {
      for (const inf of infs) {
        const hit = inf.get(name, ns);
        if (hit) return hit;
      }
      return undefined;
    };
    const cluster = new Cluster(client, count, (verb, seconds) =>
      metrics.apiRequestDuration.observe({ verb }, seconds),
    );
    this.secretValues = new SecretValues(
      (ns, name) => find(this.secrets, ns, name),
      async (namespace, name) => {
        count('get');
        return client.find<V1Secret>(namedPath('v1', 'secrets', namespace, name));
      },
    );
    const getSecret = (ns: string, name: string) => this.secretValues.get(ns, name);
    const reconciler = new DiscordBotReconciler({
      getBot: (ns, name) => find(this.bots, ns, name),
      sameNameElsewhere: (ns, name) => this.botsNamed(name).some((b) => b.metadata.namespace !== ns),
      getSecret,
      getOwned: (kind, ns, name) => find(this.owned.get(kind) ?? [], ns, name),
      listOwned: (kind, ns, ownerUid) =>
        (this.owned.get(kind) ?? []).flatMap((inf) =>
          inf.listOwnedBy(ownerUid).filter((o) => o.metadata?.namespace === ns),
        ),
      cluster,
      workerScaling: new WorkerScaling({
        cluster,
        backlog: this.backlog,
        metrics,
        getSecret,
        intervalMs: config.autoscaleIntervalMs,
        log,
      }),
      discord: new GatewayBotCache(config.discordApiUrl, (status) => metrics.discordRequests.inc({ status })),
      metrics,
      discordApiUrl: config.discordApiUrl,
      log,
    });
    this.queue = new WorkQueue((key) => this.loadSecrets(key).then(() => reconciler.reconcile(key)), {
      concurrency: config.maxConcurrentReconciles,
      onStart: (key, waitedMs) => {
        metrics.queueWait.observe(waitedMs / 1000);
        log.debug({ key, waitedMs: Math.round(waitedMs) }, 'reconcile starting');
      },
      onResult: (key, outcome, ms, err) => {
        metrics.reconciles.inc({ result: outcome });
        metrics.reconcileDuration.observe({ result: outcome }, ms / 1000);
        metrics.queueDepth.set(this.queue.depth());
        if (outcome === 'error') {
          metrics.reconcileErrors.inc();
          log.warn({ key, err: describeError(err) }, 'reconcile failed; will retry with backoff');
        }
      },
    });
  }

  private enqueue(namespace: string | undefined, name: string | undefined, priority?: Priority): void {
    if (!namespace || !name || !this.running) return;
    const key = `${namespace}/${name}`;
    // Before adding: the depth the key meets (adding may start its reconcile at once).
    this.log.debug({ key, priority: priority ?? 'event', depth: this.queue.depth() }, 'queued');
    this.queue.add(key, priority);
    this.metrics.queueDepth.set(this.queue.depth());
  }

  /** Every DiscordBot of this name, in any watched namespace (informer caches). */
  private botsNamed(name: string | undefined): DiscordBot[] {
    return name ? this.bots.flatMap((inf) => inf.listNamed(name)) : [];
  }

  private enqueueOwner(obj: KubernetesObject): void {
    const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === 'DiscordBot' && o.controller);
    this.enqueue(obj.metadata?.namespace, owner?.name);
  }

  private enqueueBotsUsingSecret(secret: V1Secret): void {
    const ns = secret.metadata?.namespace;
    const name = secret.metadata?.name ?? '';
    for (const inf of this.bots)
      for (const bot of inf.list(ns))
        if (referencedSecretNames(bot).includes(name)) this.enqueue(ns, bot.metadata.name);
  }

  /** Reads the values of the Secrets a bot references that changed since they were last read. */
  private async loadSecrets(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string];
    for (const inf of this.bots) {
      const bot = inf.get(name, namespace);
      if (bot) await this.secretValues.load(namespace, referencedSecretNames(bot));
    }
  }

  async start(): Promise<void> {
    this.running = true;
    const all = [...this.bots, ...this.secrets, ...[...this.owned.values()].flat()];
    await Promise.all(all.map((i) => i.start()));
    this.log.info({ informers: all.length }, 'caches synced; reconciling');
    this.queue.start();
    this.resync();
    this.resyncTimer = setInterval(() => this.resync(), this.config.resyncPeriodMs);
    this.resyncTimer.unref();
  }

  /** Every bot again, behind the edits (timer lane): a periodic safety net, not a change. */
  private resync(): void {
    for (const inf of this.bots)
      for (const bot of inf.list()) this.enqueue(bot.metadata.namespace, bot.metadata.name, 'timer');
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.resyncTimer);
    await this.queue.stop();
    this.backlog.close();
    await Promise.all(
      [...this.bots, ...this.secrets, ...[...this.owned.values()].flat()].map((i) => i.stop()),
    );
    this.closeClient();
  }
}
