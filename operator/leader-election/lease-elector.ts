// Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it:
// acquire when the holder's record has not changed for a whole lease duration (timed by our
// own clock, so clock skew between replicas does not matter), renew every retry period, give
// up leadership the moment renewals have failed for the renew deadline. Every request is
// aborted at that deadline and a timer ends leadership there even while a request hangs: a
// stalled apiserver connection must not leave a leader that cannot renew beside a new one.
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { EventEmitter } from 'node:events';
import type { Logger } from '../../bot/observability/logger.js';
import { KubeClient } from '../kube/api-client.js';
import { collectionPath, LEASES, namedPath } from '../kube/resources.js';

export interface ElectorOptions {
  name: string;
  namespace: string;
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

/** metav1.MicroTime wants exactly six fractional digits. */
function microTime(d: Date): Date {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z') as unknown as Date;
}

interface ElectorEvents {
  'started-leading': [];
  'stopped-leading': [];
  'new-leader': [identity: string];
}

export class LeaseElector extends EventEmitter<ElectorEvents> {
  private readonly client: KubeClient;
  /** Closes the connection pool this elector made (none when it was given a client). */
  private readonly closeClient: () => void;
  private leading = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  /** Aborts the attempt in flight (its term ended, or the elector stops). */
  private current?: AbortController;
  private inFlight?: Promise<void>;
  private lastRenewal = 0;
  private observedRecord = '';
  private observedAt = 0;
  private knownLeader = '';

  /** `given`: the operator's client, or (tests) a `@kubernetes/client-node` KubeConfig. */
  constructor(
    given: KubeClient | KubeConfig,
    private readonly options: ElectorOptions,
    private readonly log: Logger,
    private readonly countRequest: (verb: string) => void = () => undefined,
  ) {
    super();
    this.client = given instanceof KubeClient ? given : KubeClient.fromKubeConfig(given);
    this.closeClient = this.client === given ? () => undefined : () => this.client.close();
  }

  private leasePath(): string {
    return namedPath(LEASES.apiVersion, LEASES.plural, this.options.namespace, this.options.name);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    void this.loop();
  }

  private loop(): Promise<void> {
    this.inFlight = this.attempt();
    return this.inFlight;
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const started = Date.now();
    // A leader's attempt ends at its renew deadline (or when the deadline timer ends the term);
    // a candidate's after as long.
    const deadline = (this.leading ? this.lastRenewal : started) + this.options.renewDeadlineMs;
    const ended = new AbortController();
    this.current = ended;
    try {
      const signal = AbortSignal.any([ended.signal, AbortSignal.timeout(Math.max(1, deadline - started))]);
      const ok = await this.tryAcquireOrRenew(signal);
      // A write that lands after the term ended, or after stop(), must not make us leader again.
      if (ok && !ended.signal.aborted && !this.stopped) {
        this.becomeLeader();
        this.renewed(started);
      }
    } catch (err) {
      if (!this.stopped) this.log.warn({ err: (err as Error).message }, 'lease acquire/renew failed');
    }
    if (this.leading && Date.now() - this.lastRenewal >= this.options.renewDeadlineMs)
      this.lose('could not renew the lease within the renew deadline');
    if (!this.stopped) this.timer = setTimeout(() => void this.loop(), this.options.retryPeriodMs);
  }

  /** Counted from when the renewing request was sent: the earliest the lease can have been renewed. */
  private renewed(at: number): void {
    this.lastRenewal = at;
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = setTimeout(
      () => this.lose('could not renew the lease within the renew deadline'),
      // Never negative (Node warns): a renew request that outlived the deadline loses at once.
      Math.max(0, at + this.options.renewDeadlineMs - Date.now()),
    );
  }

  private lose(why: string): void {
    clearTimeout(this.deadlineTimer);
    this.current?.abort();
    if (!this.leading) return;
    this.leading = false;
    this.log.warn({ why }, 'lost leadership');
    this.emit('stopped-leading');
  }

  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const { name, namespace, identity, leaseDurationMs } = this.options;
    const now = new Date();
    this.countRequest('get');
    const lease = await this.client.find<V1Lease>(this.leasePath(), signal);
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(leaseDurationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    if (!lease) {
      this.countRequest('create');
      await this.client.create(
        collectionPath(LEASES.apiVersion, LEASES.plural, namespace),
        { apiVersion: LEASES.apiVersion, kind: LEASES.kind, metadata: { name, namespace }, spec },
        signal,
      );
      return true;
    }
    const holder = lease.spec?.holderIdentity ?? '';
    const record = `${holder}|${String(lease.spec?.renewTime ?? '')}`;
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    if (holder && holder !== this.knownLeader) {
      this.knownLeader = holder;
      if (holder !== identity) this.emit('new-leader', holder);
    }
    const heldByOther = holder !== '' && holder !== identity;
    if (heldByOther && this.observedAt + leaseDurationMs > Date.now()) {
      if (this.leading) this.lose(`the lease is held by ${holder}`);
      return false;
    }
    const body: V1Lease = {
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: identity,
        leaseDurationSeconds: spec.leaseDurationSeconds,
        renewTime: spec.renewTime,
        ...(holder === identity
          ? {}
          : { acquireTime: spec.acquireTime, leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 }),
      },
    };
    // Optimistic concurrency: the update carries the resourceVersion we read; a 409 means
    // someone else wrote first, and we try again next period.
    this.countRequest('update');
    await this.client.replace(this.leasePath(), body, signal);
    return true;
  }

  private becomeLeader(): void {
    if (this.leading) return;
    this.leading = true;
    this.knownLeader = this.options.identity;
    this.log.info({ identity: this.options.identity }, 'became leader');
    this.emit('started-leading');
  }

  /** Stops campaigning; a leader hands the lease back so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadlineTimer);
    this.current?.abort();
    // Nothing may land after the release (a renewal that completes late would take it back).
    await this.inFlight;
    if (this.leading) await this.release();
    this.closeClient();
  }

  /** Hands the lease back (holder cleared) so a standby takes over at once. */
  private async release(): Promise<void> {
    this.leading = false;
    // Bounded too: a stalled connection must not hold up the shutdown.
    const signal = AbortSignal.timeout(this.options.renewDeadlineMs);
    try {
      const lease = await this.client.get<V1Lease>(this.leasePath(), signal);
      if (lease.spec?.holderIdentity === this.options.identity) {
        await this.client.replace(
          this.leasePath(),
          {
            ...lease,
            spec: {
              ...lease.spec,
              holderIdentity: '',
              leaseDurationSeconds: 1,
              renewTime: microTime(new Date()),
            },
          },
          signal,
        );
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not release the lease');
    }
  }
}
