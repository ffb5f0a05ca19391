// A stable key per Discord event, the same whichever session, shard generation or replay
// delivered it, so the queue accepts it once (it is the BullMQ job id, which may not contain ':').
import { createHash } from 'node:crypto';

type Payload = Record<string, unknown> & { id?: string; guild_id?: string; user?: { id?: string } };

// Discord ids are snowflakes (digits); anything else is keyed by content, so no payload can put
// a character BullMQ refuses (':') into the id.
const SNOWFLAKE = /^\d{1,20}$/;

export function dedupKey(type: string, d: unknown): string {
  const p = (d ?? {}) as Payload;
  const id = typeof p.id === 'string' && SNOWFLAKE.test(p.id) ? p.id : undefined;
  switch (type) {
    case 'INTERACTION_CREATE':
    case 'MESSAGE_CREATE':
    case 'MESSAGE_DELETE':
      if (id) return `${type}-${id}`;
      break;
    case 'MESSAGE_UPDATE':
      // One job per edit: the edit time, digits only (the ISO form has colons).
      if (id) return `${type}-${id}-${String(p.edited_timestamp ?? '').replace(/\D/g, '')}`;
      break;
    default:
      break;
  }
  // Anything else is identified by its content: the same event delivered twice is identical.
  return `${type}-${createHash('sha1').update(JSON.stringify(d)).digest('base64url')}`;
}
