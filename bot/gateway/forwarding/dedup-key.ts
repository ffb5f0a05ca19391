// A stable key per Discord event, the same whichever replay delivered it, so it runs once: an
// interaction's BullMQ job id (which may not contain ':'), and the key an event's worker claims
// (bot/worker/processing/dispatch-claims.ts).
// - Events with their own id (interactions, created and deleted messages) are keyed by it: the
//   same whichever session or gateway generation delivered them (two generations run side by
//   side during a reshard).
// - Anything else is keyed by where it sits in the stream: session id and sequence, which a
//   RESUME replays unchanged. Not by content: a reaction added, removed and added again, or a
//   message pinned twice, is the same content twice and must still arrive twice. (During a
//   reshard's overlap such events can arrive once per generation: at least once, never lost.)
// - Without a session (not expected from the gateway), by content.
import { createHash } from 'node:crypto';

type Payload = Record<string, unknown> & { id?: string };

/** Where a dispatch sits in its session's stream. */
export interface StreamPosition {
  sessionId?: string;
  seq: number;
}

// Discord ids are snowflakes (digits) and session ids hex; anything else is not trusted to
// shape the key, so no payload can put a character BullMQ refuses (':') into the id.
const SNOWFLAKE = /^\d{1,20}$/;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;
const KEYED_BY_ID = new Set(['INTERACTION_CREATE', 'MESSAGE_CREATE', 'MESSAGE_DELETE']);

export function dedupKey(type: string, d: unknown, position?: StreamPosition): string {
  const p = (d ?? {}) as Payload;
  if (KEYED_BY_ID.has(type) && typeof p.id === 'string' && SNOWFLAKE.test(p.id)) return `${type}-${p.id}`;
  if (position?.sessionId && SESSION_ID.test(position.sessionId) && Number.isSafeInteger(position.seq))
    return `${type}-${position.sessionId}-${position.seq}`;
  return `${type}-${createHash('sha1').update(JSON.stringify(d)).digest('base64url')}`;
}
