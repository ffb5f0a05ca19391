// What one reconcile of one DiscordBot accumulates before it writes: the status it is building
// (conditions set as it goes), the Events to record, and the deletions that must wait for the
// status write. The reconciler's steps read and add to it; nothing here does I/O.
import type { Logger } from '../../bot/observability/logger.js';
import type { DiscordBot, DiscordBotStatus } from '../api/v1alpha1/types.js';
import type { EventType } from '../kube/cluster.js';
import { conditionOf, setCondition, type ConditionInput } from './conditions.js';

export class ReconcilePass {
  readonly status: DiscordBotStatus;
  readonly events: [EventType, string, string][] = [];
  /** Deletions that must follow the status write (old gateway generations). */
  readonly afterStatus: (() => Promise<void>)[] = [];
  readonly namespace: string;
  readonly name: string;

  constructor(
    readonly key: string,
    /** The bot as rendered: its spec, but for an event partition count held back (event-partitions-roll.ts). */
    public bot: DiscordBot,
    /** The status this pass starts from: ours if the cache still lags our last write. */
    readonly before: DiscordBotStatus,
    /** The status last written (compared with the result, so unchanged status costs no write). */
    readonly written: DiscordBotStatus,
    readonly now: Date,
    readonly log: Logger,
    /** No other DiscordBot has this name: its pods may use the keys of releases before namespaced keys. */
    readonly legacyKeys: boolean,
  ) {
    this.namespace = bot.metadata.namespace;
    this.name = bot.metadata.name;
    this.status = { ...before, observedGeneration: this.generation, conditions: written.conditions ?? [] };
  }

  get generation(): number {
    return this.bot.metadata.generation ?? 0;
  }

  setCondition(c: ConditionInput): void {
    this.status.conditions = setCondition(this.status.conditions ?? [], c, this.generation, this.now);
  }

  event(type: EventType, reason: string, message: string): void {
    this.events.push([type, reason, message]);
  }

  /** Ready and Progressing False for `reason`, Degraded True; a Warning Event when it is new. */
  degrade(reason: string, message: string): void {
    const was = conditionOf(this.before.conditions, 'Degraded');
    if (was?.reason !== reason || was?.status !== 'True') this.event('Warning', reason, message);
    this.setCondition({ type: 'Degraded', status: 'True', reason, message });
    this.setCondition({ type: 'Ready', status: 'False', reason, message });
    this.setCondition({
      type: 'Progressing',
      status: 'False',
      reason,
      message: 'Waiting for the problem to be fixed',
    });
  }

  /** A Normal Event when the pass ends a Degraded state. */
  noteRecovery(): void {
    const was = conditionOf(this.before.conditions, 'Degraded');
    const is = conditionOf(this.status.conditions, 'Degraded');
    if (was?.status === 'True' && is?.status !== 'True')
      this.event('Normal', 'Recovered', `Recovered from ${was.reason}`);
  }
}
