// The demo bot's handler module (what a bot author would build into an image on top of
// Shardwarden's, see docs/workers.md): it records every MESSAGE_CREATE it processes in a Redis
// set, so the demo can count exactly what was processed, lost and processed twice, and answers
// /ping. SHARDWARDEN_DEMO_EVENT_DELAY_MS makes each event take a while, so a burst builds a
// backlog that the worker autoscaler can see. SHARDWARDEN_DEMO_LEDGER_PREFIX puts the ledger under
// another prefix (hash tag) than the bot's: a test that kills the bot's Redis Cluster master
// keeps the ledger on another one, so the ledger measures the stream and not its own losses.
import { defineBotModule } from '../bot/worker/handlers/bot-module.js';

/** Redis keys of the ledger, named by the bot's `key` (its hash slot, like every key of the bot). */
export function ledgerKeys(key: (...parts: string[]) => string) {
  return {
    /** Ids of the processed events. */
    processed: key('demo', 'processed'),
    /** Incremented for every event id seen a second time. */
    duplicates: key('demo', 'duplicates'),
    /** Event id → when the gateway received it (the first time), to find gaps in forwarding. */
    receivedAt: key('demo', 'received-at'),
  };
}

/** The ledger's key function: the bot's own, or one under `prefix`. */
export function ledgerKeyOf(
  prefix: string | undefined,
  botKey: (...parts: string[]) => string,
): (...parts: string[]) => string {
  return prefix ? (...parts) => [prefix, ...parts].join(':') : botKey;
}

export default defineBotModule({
  name: 'demo',
  commands: [
    {
      definition: { name: 'ping', description: 'Answers at once' },
      async execute(interaction) {
        return `pong from shard of guild ${interaction.guildId ?? '-'}`;
      },
    },
  ],
  events: [
    {
      type: 'MESSAGE_CREATE',
      async handle(event, services) {
        const delayMs = Number(services.env.SHARDWARDEN_DEMO_EVENT_DELAY_MS ?? 0);
        if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
        const { id } = event.payload as { id: string };
        const keys = ledgerKeys(ledgerKeyOf(services.env.SHARDWARDEN_DEMO_LEDGER_PREFIX, services.key));
        // SADD answers 0 for an id already there: that event was processed before.
        if ((await services.redis.sadd(keys.processed, id)) === 0) await services.redis.incr(keys.duplicates);
        else await services.redis.zadd(keys.receivedAt, 'NX', event.receivedAt, id);
      },
    },
  ],
});
