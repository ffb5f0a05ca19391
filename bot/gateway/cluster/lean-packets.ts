// The Ear does not need discord.js to build guilds, members, messages or interactions: it
// forwards raw dispatches. discord.js handles every packet after emitting `raw`, building
// objects (and, before the client is ready, queueing packets) that the Ear would throw away.
// This keeps only the packets discord.js needs for its own session state (READY sets the
// client user; RESUMED marks the shard ready again); shard readiness (waiting for each
// guild's GUILD_CREATE) is tracked by discord.js outside handlePacket, so it still works.
// handlePacket is internal to discord.js v14; the gateway tests fail if that changes.
import type { Client } from 'discord.js';

const KEEP = new Set(['READY', 'RESUMED']);

interface PacketManager {
  handlePacket(packet: { t?: string } | undefined, shard: unknown): boolean;
}

export function handleOnlySessionPackets(client: Client): void {
  const ws = client.ws as unknown as PacketManager;
  const original = ws.handlePacket.bind(ws);
  ws.handlePacket = (packet, shard) => (packet?.t && !KEEP.has(packet.t) ? true : original(packet, shard));
}
