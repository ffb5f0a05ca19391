// Preloaded (`--import`) into the gateway benchmark's measured processes: the default client and
// the Ear's cluster process. It times the startup flood the same way in both: from the first
// GUILD_CREATE that @discordjs/ws hands to discord.js to the moment the last of
// FLOOD_PROBE_COUNT has been handled (the listener, discord.js's handlePacket, runs inside
// `emit`), with the process's CPU time over the same span, and writes the figures to
// FLOOD_PROBE_DIR/flood-<pid>.json. Processes without a client (the Ear's primary) are skipped,
// so they do not load @discordjs/ws for it.
import cluster from 'node:cluster';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const dir = process.env.FLOOD_PROBE_DIR;
const expected = Number(process.env.FLOOD_PROBE_COUNT);
const isEarPrimary = process.env.FLOOD_PROBE_SKIP_PRIMARY === '1' && cluster.isPrimary;

if (dir && expected > 0 && !isEarPrimary) {
  const require = createRequire(import.meta.url);
  const ws = createRequire(require.resolve('discord.js'))('@discordjs/ws') as {
    WebSocketManager: { prototype: { emit(event: string, payload: unknown): boolean } };
  };
  const proto = ws.WebSocketManager.prototype;
  const emit = proto.emit;
  let count = 0;
  let startedAt = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  proto.emit = function probed(this: unknown, event: string, payload: unknown) {
    const guildCreate =
      event === 'dispatch' && (payload as { data?: { t?: string } } | undefined)?.data?.t === 'GUILD_CREATE';
    if (guildCreate && count === 0) {
      startedAt = performance.now();
      cpuAtStart = process.cpuUsage();
    }
    const result = emit.call(this, event, payload);
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
