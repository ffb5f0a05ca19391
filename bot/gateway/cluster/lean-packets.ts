// The Ear does not need discord.js to build guilds, members, messages or interactions: it
// forwards raw dispatches. discord.js handles every packet after emitting `raw`, building
// objects (and, before the client is ready, queueing packets) that the Ear would throw away.
// This keeps only the packets discord.js needs for its own session state (READY sets the
// client user; RESUMED marks the shard ready again); shard readiness (waiting for each
// guild's GUILD_CREATE) is tracked by discord.js outside handlePacket, so it still works.
// READY is handed over without its guild list: discord.js would otherwise build an
// (unavailable) Guild object with a dozen managers for each of them, kept for the process's
// life (about 20 MB per 10,000 guilds). The readiness tracking reads the list from its own
// copy of the packet (the @discordjs/ws Ready event), which is left alone.
// handlePacket is internal to discord.js v14; the gateway tests fail if that changes.
import type { Client } from 'discord.js';

const KEEP = new Set(['READY', 'RESUMED']);

interface Packet {
  t?: string;
  d?: unknown;
}

interface PacketManager {
  handlePacket(packet: Packet | undefined, shard: unknown): boolean;
}

/** What discord.js gets to see of a dispatch; undefined means "nothing to do". */
export function leanPacket(packet: Packet): Packet | undefined {
  if (!packet.t) return packet;
  if (!KEEP.has(packet.t)) return undefined;
  if (packet.t === 'READY' && packet.d && typeof packet.d === 'object')
    return { ...packet, d: { ...(packet.d as object), guilds: [] } };
  return packet;
}

export function handleOnlySessionPackets(client: Client): void {
  const ws = client.ws as unknown as PacketManager;
  const original = ws.handlePacket.bind(ws);
  ws.handlePacket = (packet, shard) => {
    // An undefined packet is discord.js draining its own queue: let it.
    if (!packet) return original(packet, shard);
    const lean = leanPacket(packet);
    return lean ? original(lean, shard) : true;
  };
}
