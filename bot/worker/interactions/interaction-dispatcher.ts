// Runs one INTERACTION_CREATE job inside Discord's 3-second window: checks (known command,
// admin, cooldown), an immediate deferral for commands marked slow, an automatic deferral for
// fast commands that run late, then the answer. Errors get a reply too, never silence.
import {
  ApplicationCommandType,
  InteractionType,
  type APIChatInputApplicationCommandInteraction,
  type APIInteraction,
} from 'discord.js';
import type { Logger } from 'pino';
import type { DispatchJob } from '../../queues/queue-names.js';
import { UserFacingError, type CommandReply, type WorkerServices } from '../handlers/bot-module.js';
import type { HandlerRegistry } from '../handlers/handler-registry.js';
import type { WorkerMetrics } from '../metrics.js';
import type { Cooldowns } from './cooldowns.js';
import { InteractionContext } from './interaction-context.js';

export interface InteractionTiming {
  /** Discord's window for the first response. */
  windowMs: number;
  /** A fast command still running this long before the window closes is deferred. */
  safetyMs: number;
}

export const DISCORD_TIMING: InteractionTiming = { windowMs: 3_000, safetyMs: 700 };

export interface InteractionOutcome {
  /** Metric label: the command name, or why nothing ran. */
  type: string;
}

export class InteractionDispatcher {
  constructor(
    private readonly registry: HandlerRegistry,
    private readonly services: WorkerServices,
    private readonly cooldowns: Cooldowns,
    private readonly metrics: WorkerMetrics,
    private readonly log: Logger,
    private readonly timing: InteractionTiming = DISCORD_TIMING,
  ) {}

  async handle(job: DispatchJob): Promise<InteractionOutcome> {
    const raw = job.d as APIInteraction;
    if (
      raw.type !== InteractionType.ApplicationCommand ||
      raw.data.type !== ApplicationCommandType.ChatInput
    ) {
      // Buttons, modals and autocomplete are not part of the handler API yet.
      this.log.debug({ interactionType: raw.type }, 'interaction type not handled');
      return { type: 'unsupported' };
    }
    const interaction = raw as APIChatInputApplicationCommandInteraction;
    const age = Date.now() - job.receivedAt;
    if (age >= this.timing.windowMs) {
      this.metrics.interactionsLate.inc();
      this.log.warn(
        { command: interaction.data.name, ageMs: age, shard: job.shardId },
        'interaction taken after its response window closed; not answered',
      );
      return { type: 'expired' };
    }
    const handler = this.registry.command(interaction.data.name);
    // Replies are public unless the command says otherwise; refusals and errors are always ephemeral.
    const ctx = new InteractionContext(interaction, this.services.rest, handler?.ephemeral ?? false);
    const firstResponse = () => this.observeFirstResponse(ctx, job.receivedAt);
    if (!handler) {
      await ctx.reply({
        content: `\`/${interaction.data.name}\` is not a command this bot knows (any more). An admin can run \`register-commands\` to refresh the list.`,
        ephemeral: true,
      });
      firstResponse();
      return { type: 'unknown_command' };
    }
    const type = interaction.data.name;
    try {
      if (handler.adminOnly && !ctx.isAdmin())
        throw new UserFacingError(
          `\`/${type}\` is for admins (Administrator, Manage Server or Manage Roles).`,
        );
      if (handler.cooldownSeconds) {
        const leftMs = await this.cooldowns.take(type, ctx.userId, handler.cooldownSeconds);
        if (leftMs > 0)
          throw new UserFacingError(
            `Slow down: \`/${type}\` can be used again in ${Math.ceil(leftMs / 1000)} s.`,
          );
      }
    } catch (err) {
      await ctx.reply(this.errorReply(err, ctx));
      firstResponse();
      if (err instanceof UserFacingError) return { type };
      throw err;
    }

    if (handler.defer) {
      await ctx.defer();
      firstResponse();
    }
    // A fast command that runs late is deferred before the window closes.
    let deferring: Promise<void> | undefined;
    const deferAt = job.receivedAt + this.timing.windowMs - this.timing.safetyMs;
    const timer = setTimeout(
      () => {
        if (ctx.state !== 'none') return;
        deferring = ctx.defer().then(firstResponse, (err: unknown) => {
          this.log.warn({ command: type, err: (err as Error).message }, 'automatic deferral failed');
        });
      },
      Math.max(0, deferAt - Date.now()),
    );
    let reply: CommandReply;
    let failure: unknown;
    try {
      reply = await handler.execute(ctx, this.services);
    } catch (err) {
      reply = this.errorReply(err, ctx);
      if (!(err instanceof UserFacingError)) failure = err;
    } finally {
      clearTimeout(timer);
    }
    if (deferring) await deferring;
    const wasFirst = ctx.state === 'none';
    await ctx.respond(reply);
    if (wasFirst) firstResponse();
    if (failure) throw failure;
    return { type };
  }

  private errorReply(err: unknown, ctx: InteractionContext): CommandReply {
    if (err instanceof UserFacingError) return { content: err.message, ephemeral: true };
    this.log.error(
      {
        command: ctx.commandName,
        interaction: ctx.id,
        err: (err as Error).message,
        stack: (err as Error).stack,
      },
      'command failed',
    );
    return {
      content: `Something went wrong while running \`/${ctx.commandName}\`. Please try again later (reference ${ctx.id}).`,
      ephemeral: true,
    };
  }

  private observeFirstResponse(ctx: InteractionContext, receivedAt: number): void {
    this.metrics.interactionResponse.observe(
      { kind: ctx.state === 'deferred' ? 'deferred' : 'reply' },
      (Date.now() - receivedAt) / 1000,
    );
  }
}
