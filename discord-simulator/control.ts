// The control API (/_simulator/...) for processes that cannot call the simulator in-process:
// the demo, benchmarks and the standalone command. Loopback only, no auth.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayFault } from './gateway/server.js';
import type { DiscordSimulator } from './simulator.js';
import { HttpError, requestTarget, matchPath, readJson, sendJson } from './rest/http.js';

const PREFIX = '/_simulator';

export function isControlPath(path: string): boolean {
  return path === PREFIX || path.startsWith(`${PREFIX}/`);
}

function bad(message: string): HttpError {
  return new HttpError(400, { message });
}

function int(value: unknown, name: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min)
    throw bad(`${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export async function handleControl(
  sim: DiscordSimulator,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { method, path } = requestTarget(req, PREFIX);
  try {
    const body = ((await readJson(req)) ?? {}) as Record<string, unknown>;
    const r = sim.recorder;
    if (method === 'GET' && path === '/state') {
      return sendJson(res, 200, {
        guilds: sim.world.guilds.size,
        recommendedShards: sim.recommendedShards(),
        sessionStartLimit: sim.gateway.sessionStartLimit(),
        connectedShards: sim.gateway.connectedShards(),
        counters: r.counters,
        identifies: r.identifies.length,
        resumes: r.resumes.length,
        violations: r.violations,
        interactionResponses: r.interactionResponses.length,
      });
    }
    const record = matchPath('/records/:kind', path);
    if (method === 'GET' && record) {
      const kinds = {
        identifies: r.identifies,
        resumes: r.resumes,
        rest: r.restCalls,
        violations: r.violations,
        interactions: r.interactionResponses,
        closes: r.closes,
      };
      const list = kinds[record.kind as keyof typeof kinds];
      if (!list) throw bad(`unknown record kind ${record.kind}; one of ${Object.keys(kinds).join(', ')}`);
      return sendJson(res, 200, list);
    }
    if (method === 'POST' && path === '/records/reset') {
      r.reset();
      return sendJson(res, 204, undefined);
    }
    if (method === 'GET' && path === '/guilds') return sendJson(res, 200, [...sim.world.guilds.keys()]);
    if (method === 'POST' && path === '/guilds') {
      const added = sim.addGuilds(int(body.count ?? 1, 'count', 1), body.size as never);
      return sendJson(res, 200, { ids: added.map((g) => g.id), recommendedShards: sim.recommendedShards() });
    }
    const guild = matchPath('/guilds/:id', path);
    if (method === 'DELETE' && guild) {
      if (!sim.removeGuild(guild.id!)) throw new HttpError(404, { message: `unknown guild ${guild.id}` });
      return sendJson(res, 200, { recommendedShards: sim.recommendedShards() });
    }
    if (method === 'POST' && path === '/dispatch') {
      if (typeof body.type !== 'string') throw bad('type (the dispatch name) is required');
      if (body.count !== undefined) {
        const sent = await sim.stream({
          type: body.type,
          count: int(body.count, 'count', 1),
          ratePerSecond: body.ratePerSecond === undefined ? 0 : int(body.ratePerSecond, 'ratePerSecond'),
          guildIds: body.guildIds as string[] | undefined,
          make:
            body.data === undefined
              ? undefined
              : (i, guildId) => ({
                  // Each dispatch gets its own id and, if asked, the guild's first channel (clients
                  // such as discord.js ignore messages for channels they do not know).
                  ...(body.data as object),
                  id: sim.world.nextId(),
                  ...(body.firstChannel
                    ? { channel_id: sim.world.firstChannelId(sim.world.guild(guildId)!) }
                    : {}),
                  guild_id: guildId,
                  n: i,
                  // A message's timestamp is when it was created: here, when it is sent (latency figures).
                  ...(body.stampTimestamp ? { timestamp: new Date().toISOString() } : {}),
                }),
        });
        return sendJson(res, 200, { sent });
      }
      const target =
        typeof body.guildId === 'string'
          ? { guildId: body.guildId }
          : {
              shardId: int(body.shardId, 'shardId'),
              shardCount: body.shardCount === undefined ? undefined : int(body.shardCount, 'shardCount', 1),
            };
      return sendJson(res, 200, { sessions: sim.dispatch(body.type, body.data ?? {}, target) });
    }
    if (method === 'POST' && path === '/interactions') {
      if (typeof body.guildId !== 'string' || typeof body.command !== 'string')
        throw bad('guildId and command are required');
      const { id, token } = sim.injectInteraction({
        guildId: body.guildId,
        userId: typeof body.userId === 'string' ? body.userId : String(BigInt(body.guildId) + 1n),
        command: body.command,
        options: body.options as unknown[] | undefined,
        commandType: body.commandType === undefined ? undefined : int(body.commandType, 'commandType', 1),
        targetId: typeof body.targetId === 'string' ? body.targetId : undefined,
        permissions: body.permissions as string | undefined,
      });
      return sendJson(res, 200, { id, token });
    }
    if (method === 'POST' && path === '/faults') {
      const fault = body.fault as GatewayFault | undefined;
      const kinds = [
        'reconnect',
        'invalid-session',
        'drop',
        'ignore-heartbeats',
        'request-heartbeat',
        'close',
      ];
      if (!fault || !kinds.includes(fault.kind)) throw bad(`fault.kind must be one of ${kinds.join(', ')}`);
      const shardCount = body.shardCount === undefined ? undefined : int(body.shardCount, 'shardCount', 1);
      return sendJson(res, 200, { connections: sim.fault(int(body.shardId, 'shardId'), fault, shardCount) });
    }
    throw new HttpError(404, { message: `no control route ${method} ${PREFIX}${path}` });
  } catch (err) {
    const e = err instanceof HttpError ? err : new HttpError(500, { message: (err as Error).message });
    sendJson(res, e.status, e.body);
  }
}
