// A stable key per Discord event, the same whichever session, shard generation or replay
// delivered it, so the queue accepts it once (it is the BullMQ job id, which may not contain ':').
import { createHash } from 'node:crypto';

type Payload = Record<string, unknown> & { id?: string; guild_id?: string; user?: { id?: string } };

export function dedupKey(type: string, d: unknown): string {
  const p = (d ?? {}) as Payload;
  switch (type) {
    case 'INTERACTION_CREATE':
    case 'MESSAGE_CREATE':
    case 'MESSAGE_DELETE':
      if (p.id) return `${type}-${p.id}`;
      break;
    case 'MESSAGE_UPDATE':
      // The ISO timestamp has colons; BullMQ rejects such an id, and the forwarder would retry
      // that batch forever.
      if (p.id) return `${type}-${p.id}-${String(p.edited_timestamp ?? '').replaceAll(':', '')}`;
      break;
    default:
      break;
  }
  // Anything else is identified by its content: the same event delivered twice is identical.
  return `${type}-${createHash('sha1').update(JSON.stringify(d)).digest('base64url')}`;
}
