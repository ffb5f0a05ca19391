// An example of a bot author's handler module: build it into an image FROM Shardwarden's and set
// SHARDWARDEN_HANDLER_MODULES=shardwarden:token-gating,/app/dist/examples/custom-handlers/index.js
// (see docs/workers.md). The worker tests load it too, so every line here is exercised.
import { Counter } from 'prom-client';
import { ApplicationCommandOptionType } from 'discord.js';
import { defineBotModule, UserFacingError } from '../../bot/worker/handlers/bot-module.js';

let messages: Counter | undefined;

export default defineBotModule({
  name: 'example',
  commands: [
    {
      definition: { name: 'ping', description: 'Answers at once' },
      async execute() {
        return 'pong';
      },
    },
    {
      // Declared slow: acknowledged at once, then edited with the result.
      definition: {
        name: 'slow',
        description: 'Takes a while',
        options: [{ type: ApplicationCommandOptionType.Integer, name: 'ms', description: 'How long' }],
      },
      defer: true,
      async execute(interaction) {
        await new Promise((r) => setTimeout(r, interaction.getInteger('ms') ?? 1000));
        return 'done';
      },
    },
    {
      // Not declared slow but is: the worker defers it before Discord's window closes.
      definition: {
        name: 'sneaky-slow',
        description: 'Looks fast, is slow',
        options: [{ type: ApplicationCommandOptionType.Integer, name: 'ms', description: 'How long' }],
      },
      async execute(interaction) {
        await new Promise((r) => setTimeout(r, interaction.getInteger('ms') ?? 3000));
        return 'finally';
      },
    },
    {
      definition: { name: 'limited', description: 'Once every 60 s per member' },
      cooldownSeconds: 60,
      async execute() {
        return 'ok';
      },
    },
    {
      definition: { name: 'admin-only', description: 'For admins' },
      adminOnly: true,
      async execute() {
        return 'hello admin';
      },
    },
    {
      definition: { name: 'refuse', description: 'Explains why not' },
      async execute() {
        throw new UserFacingError('Not today.');
      },
    },
    {
      definition: { name: 'crash', description: 'A bug' },
      async execute() {
        throw new Error('boom');
      },
    },
  ],
  events: [
    {
      type: 'MESSAGE_CREATE',
      async handle(event, services) {
        const m = event.payload as { id: string; content?: string };
        // Failing the first attempt of marked messages shows the retry with back-off.
        if (
          m.content === 'fail-once' &&
          (await services.redis.incr(services.key('example', 'attempt', m.id))) === 1
        )
          throw new Error('transient failure');
        if (m.content === 'always-fail') throw new Error('permanent failure');
        // Idempotent under retries: a set, not a counter.
        await services.redis.sadd(services.key('example', 'seen'), m.id);
        messages?.inc();
      },
    },
  ],
  async setup(services) {
    messages = new Counter({
      name: 'example_messages_seen_total',
      help: 'MESSAGE_CREATE dispatches handled by the example module.',
      registers: [services.metrics],
    });
  },
});
