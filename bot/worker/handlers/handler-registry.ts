// All handlers of the loaded modules, by command name, dispatch type and task name. Two modules
// claiming the same command or task is a start-up error that names both.
import type { BotModule, CommandHandler, EventHandler, TaskHandler } from './bot-module.js';

export class HandlerConflictError extends Error {}

export class HandlerRegistry {
  private readonly commands = new Map<string, { module: string; handler: CommandHandler }>();
  private readonly events = new Map<string, { module: string; handler: EventHandler }[]>();
  private readonly tasks = new Map<string, { module: string; handler: TaskHandler }>();

  constructor(readonly modules: BotModule[]) {
    const names = new Set<string>();
    for (const m of modules) {
      if (!m.name) throw new HandlerConflictError('a handler module has no name');
      if (names.has(m.name)) throw new HandlerConflictError(`handler module "${m.name}" is loaded twice`);
      names.add(m.name);
      for (const c of m.commands ?? []) {
        const name = c.definition.name;
        const other = this.commands.get(name);
        if (other)
          throw new HandlerConflictError(
            `command "/${name}" is defined by both "${other.module}" and "${m.name}"`,
          );
        this.commands.set(name, { module: m.name, handler: c });
      }
      for (const e of m.events ?? []) {
        if (!/^[A-Z][A-Z_]*$/.test(e.type))
          throw new HandlerConflictError(
            `module "${m.name}" handles "${e.type}", which is not a dispatch name`,
          );
        const list = this.events.get(e.type) ?? [];
        list.push({ module: m.name, handler: e });
        this.events.set(e.type, list);
      }
      for (const t of m.tasks ?? []) {
        const other = this.tasks.get(t.name);
        if (other)
          throw new HandlerConflictError(
            `task "${t.name}" is defined by both "${other.module}" and "${m.name}"`,
          );
        this.tasks.set(t.name, { module: m.name, handler: t });
      }
    }
  }

  command(name: string): CommandHandler | undefined {
    return this.commands.get(name)?.handler;
  }

  eventHandlers(type: string): EventHandler[] {
    return (this.events.get(type) ?? []).map((e) => e.handler);
  }

  task(name: string): TaskHandler | undefined {
    return this.tasks.get(name)?.handler;
  }

  /** What `register-commands` installs. */
  commandDefinitions(): CommandHandler['definition'][] {
    return [...this.commands.values()].map((c) => c.handler.definition);
  }

  handledEventTypes(): string[] {
    return [...this.events.keys()];
  }
}
