// Preloaded (`--import`) into the gateway benchmark's measured processes: the default client and
// the Ear's process running its shards (the pod's process for clustersPerPod 1, else a cluster
// process). It times the startup flood the same way in both: from the first
// GUILD_CREATE that @discordjs/ws's WebSocketManager emits to the moment the last of
// FLOOD_PROBE_COUNT has been handled (the client's listener runs inside `emit`: discord.js's
// handlePacket, or the Ear's forwarder), with the process's CPU time over the same span, and
// writes the figures to FLOOD_PROBE_DIR/flood-<pid>.json. FLOOD_PROBE_EAR=1 marks the Ear;
// FLOOD_PROBE_SKIP_PRIMARY=1 skips a primary without a client (an Ear forking its clusters), so
// it does not load @discordjs/ws for it.
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const dir = process.env.FLOOD_PROBE_DIR;
const expected = Number(process.env.FLOOD_PROBE_COUNT);
const isEar = process.env.FLOOD_PROBE_EAR === '1';
const skipPrimary = process.env.FLOOD_PROBE_SKIP_PRIMARY === '1';

interface Emitting {
  prototype: { emit(event: string, ...args: unknown[]): boolean };
}

/**
 * The WebSocketManager the process's client uses, and the dispatch type of an emit's arguments.
 * The Ear's cluster imports @discordjs/ws itself (the ESM build, so the same module instance is
 * imported here), which emits (event, payload, shardId); discord.js uses its own nested copy,
 * whose 1.x emits (event, { data: payload, shardId }).
 */
async function managerOfClient(): Promise<[Emitting, (args: unknown[]) => string | undefined]> {
  if (isEar) {
    const ws = (await import('@discordjs/ws')) as unknown as { WebSocketManager: Emitting };
    return [ws.WebSocketManager, (args) => (args[0] as { t?: string } | undefined)?.t];
  }
  const require = createRequire(import.meta.url);
  const ws = createRequire(require.resolve('discord.js'))('@discordjs/ws') as { WebSocketManager: Emitting };
  return [ws.WebSocketManager, (args) => (args[0] as { data?: { t?: string } } | undefined)?.data?.t];
}

if (dir && expected > 0 && !(skipPrimary && cluster.isPrimary)) {
  const [manager, dispatchType] = await managerOfClient();
  const proto = manager.prototype;
  const emit = proto.emit;
  let count = 0;
  let startedAt = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  proto.emit = function probed(this: unknown, event: string, ...args: unknown[]) {
    const guildCreate = event === 'dispatch' && dispatchType(args) === 'GUILD_CREATE';
    if (guildCreate && count === 0) {
      startedAt = performance.now();
      cpuAtStart = process.cpuUsage();
    }
    const result = emit.call(this, event, ...args);
    if (guildCreate && ++count === expected) {
      const cpu = process.cpuUsage(cpuAtStart);
      writeFileSync(
        join(dir, `flood-${process.pid}.json`),
        JSON.stringify({
          guildCreates: count,
          ms: performance.now() - startedAt,
          cpuMs: (cpu.user + cpu.system) / 1000,
        }),
      );
    }
    return result;
  };
}
