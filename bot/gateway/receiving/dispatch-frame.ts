// A gateway frame read without building its payload. The Ear forwards a dispatch's `d` as the
// JSON text it arrived in: parsing it into objects only to serialize it again for Redis was a
// third of the Ear's CPU per dispatch, and the objects of a GUILD_CREATE flood its memory
// (docs/benchmarks.md, "Where the Ear's CPU goes"). One pass over the frame finds the envelope
// (op, t, s), where `d` starts and ends, and the top-level string fields of `d` the forwarder
// reads (id, guild_id, channel_id: the de-duplication key and the partition). The pass follows
// JSON's grammar (a frame it accepts is one JSON.parse accepts, read the same way: `d`'s text is
// written into batch bodies as it is, and one broken `d` would fail a whole batch); a frame it
// does not expect (whitespace between tokens, an escape in a key or an id, nesting deeper than
// 64) is not read here, and JSON.parse reads it as before.

/** A dispatch's `d` as received: its JSON text, and the top-level string fields the forwarder reads. */
export class RawPayload {
  id?: string;
  guild_id?: string;
  channel_id?: string;

  constructor(readonly json: string) {}

  /** Serialized whole (an inline job, a content key), it is the payload Discord sent. */
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

export interface GatewayFrame {
  op: number;
  t: string | null;
  s: number | null;
  /** Null when `d` is null, undefined when the frame has none (as JSON.parse reads them). */
  d: RawPayload | null | undefined;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const COMMA = 0x2c;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
/** Deeper nesting than this is left to JSON.parse (Discord's payloads nest a few levels). */
const MAX_DEPTH = 64;

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;
const isHexDigit = (c: number) => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
/** `"`, `\`, `/`, b, f, n, r, t: JSON's one-character escapes. */
const isEscape = (c: number) =>
  c === 0x22 ||
  c === 0x5c ||
  c === 0x2f ||
  c === 0x62 ||
  c === 0x66 ||
  c === 0x6e ||
  c === 0x72 ||
  c === 0x74;

/**
 * Just past the string whose opening quote is at `i`, or -1 if it is not a JSON string (does not
 * close, holds a raw control character or a bad escape). A plain loop: most of a payload's
 * strings are short, and an indexOf per string cost more than their characters.
 */
function stringEnd(text: string, i: number): number {
  const length = text.length;
  for (let j = i + 1; j < length; j++) {
    const c = text.charCodeAt(j);
    if (c === QUOTE) return j + 1;
    if (c < 0x20) return -1;
    if (c !== BACKSLASH) continue;
    const e = text.charCodeAt(++j);
    if (e === 0x75 /* u */) {
      for (let k = 1; k <= 4; k++) if (!isHexDigit(text.charCodeAt(j + k))) return -1;
      j += 4;
    } else if (!isEscape(e)) return -1;
  }
  return -1;
}

/** Just past the JSON number starting at `i`, or -1. */
function numberEnd(text: string, i: number): number {
  let j = i;
  if (text.charCodeAt(j) === 0x2d /* - */) j++;
  if (text.charCodeAt(j) === 0x30 /* 0 */) j++;
  else if (isDigit(text.charCodeAt(j))) while (isDigit(text.charCodeAt(j))) j++;
  else return -1;
  if (text.charCodeAt(j) === 0x2e /* . */) {
    if (!isDigit(text.charCodeAt(++j))) return -1;
    while (isDigit(text.charCodeAt(j))) j++;
  }
  const e = text.charCodeAt(j);
  if (e === 0x65 || e === 0x45 /* e E */) {
    const sign = text.charCodeAt(++j);
    if (sign === 0x2b || sign === 0x2d) j++;
    if (!isDigit(text.charCodeAt(j))) return -1;
    while (isDigit(text.charCodeAt(j))) j++;
  }
  return j;
}

/** Just past the object opening at `i` (its members' values checked, `depth` deep), or -1. */
function objectEnd(text: string, i: number, depth: number): number {
  let j = i + 1;
  if (text.charCodeAt(j) === CLOSE_OBJECT) return j + 1;
  for (;;) {
    if (text.charCodeAt(j) !== QUOTE) return -1;
    j = stringEnd(text, j);
    if (j < 0 || text.charCodeAt(j) !== COLON) return -1;
    j = valueEnd(text, j + 1, depth);
    if (j < 0) return -1;
    const c = text.charCodeAt(j);
    if (c === CLOSE_OBJECT) return j + 1;
    if (c !== COMMA) return -1;
    j++;
  }
}

/** Just past the array opening at `i`, or -1. */
function arrayEnd(text: string, i: number, depth: number): number {
  let j = i + 1;
  if (text.charCodeAt(j) === CLOSE_ARRAY) return j + 1;
  for (;;) {
    j = valueEnd(text, j, depth);
    if (j < 0) return -1;
    const c = text.charCodeAt(j);
    if (c === CLOSE_ARRAY) return j + 1;
    if (c !== COMMA) return -1;
    j++;
  }
}

/**
 * Just past the JSON value starting at `i`, or -1 if there is none (JSON's grammar, without
 * whitespace between tokens: Discord sends none, and a frame with some is JSON.parse's).
 */
function valueEnd(text: string, i: number, depth = 0): number {
  const c = text.charCodeAt(i);
  if (c === QUOTE) return stringEnd(text, i);
  if (c === OPEN_OBJECT) return depth < MAX_DEPTH ? objectEnd(text, i, depth + 1) : -1;
  if (c === OPEN_ARRAY) return depth < MAX_DEPTH ? arrayEnd(text, i, depth + 1) : -1;
  if (c === 0x74 /* t */) return text.startsWith('true', i) ? i + 4 : -1;
  if (c === 0x66 /* f */) return text.startsWith('false', i) ? i + 5 : -1;
  if (c === 0x6e /* n */) return text.startsWith('null', i) ? i + 4 : -1;
  return numberEnd(text, i);
}

/**
 * One read of one frame. A single reader object of one shape, its members walked by two plain
 * methods, keeps V8's property accesses monomorphic: the first version (visitor callbacks over
 * two context shapes) spent a sixth of the Ear's CPU in V8's generic property loads.
 */
class FrameReader {
  text = '';
  op: number | null | undefined = undefined;
  t: string | null | undefined = undefined;
  s: number | null | undefined = undefined;
  dStart = -1;
  dEnd = -1;
  id: string | undefined = undefined;
  guildId: string | undefined = undefined;
  channelId: string | undefined = undefined;

  read(text: string): GatewayFrame | undefined {
    this.text = text;
    this.op = this.t = this.s = undefined;
    this.dStart = this.dEnd = -1;
    this.id = this.guildId = this.channelId = undefined;
    const end = this.object(0, false);
    this.text = '';
    if (end !== text.length || typeof this.op !== 'number' || this.s === undefined) return undefined;
    const frame: GatewayFrame = {
      op: this.op,
      t: this.t ?? null,
      s: this.s,
      d: this.dStart < 0 ? undefined : null,
    };
    if (this.dStart < 0 || isNull(text, this.dStart, this.dEnd)) return frame;
    const d = new RawPayload(text.slice(this.dStart, this.dEnd));
    if (this.id !== undefined) d.id = this.id;
    if (this.guildId !== undefined) d.guild_id = this.guildId;
    if (this.channelId !== undefined) d.channel_id = this.channelId;
    frame.d = d;
    return frame;
  }

  /**
   * Walks the members of the object opening at `i` (the envelope, or with `payload` the
   * dispatch's `d`); returns just past the object, or -1. Keys with escapes are not read here.
   */
  private object(i: number, payload: boolean): number {
    const text = this.text;
    if (text.charCodeAt(i) !== OPEN_OBJECT) return -1;
    let j = i + 1;
    if (text.charCodeAt(j) === CLOSE_OBJECT) return j + 1;
    for (;;) {
      if (text.charCodeAt(j) !== QUOTE) return -1;
      const keyEnd = stringEnd(text, j);
      if (keyEnd < 0 || text.charCodeAt(keyEnd) !== COLON) return -1;
      for (let k = j + 1; k < keyEnd - 1; k++) if (text.charCodeAt(k) === BACKSLASH) return -1;
      const end = payload ? this.payloadMember(j + 1, keyEnd - 1) : this.envelopeMember(j + 1, keyEnd - 1);
      if (end < 0) return -1;
      const c = text.charCodeAt(end);
      if (c === CLOSE_OBJECT) return end + 1;
      if (c !== COMMA) return -1;
      j = end + 1;
    }
  }

  /** The member whose key is text[key, keyEnd); returns just past its value, or -1. */
  private envelopeMember(key: number, keyEnd: number): number {
    const text = this.text;
    const start = keyEnd + 2;
    const length = keyEnd - key;
    if (length === 1 && text.charCodeAt(key) === 0x64 /* d */) {
      // An object's members are walked once, reading the forwarder's fields on the way.
      this.id = this.guildId = this.channelId = undefined;
      this.dStart = start;
      this.dEnd =
        text.charCodeAt(start) === OPEN_OBJECT ? this.object(start, true) : valueEnd(text, start, 1);
      return this.dEnd;
    }
    const end = valueEnd(text, start);
    if (end < 0) return -1;
    if (length === 2 && text.startsWith('op', key)) this.op = integerOrNull(text, start, end);
    else if (length === 1 && text.charCodeAt(key) === 0x73 /* s */) this.s = integerOrNull(text, start, end);
    else if (length === 1 && text.charCodeAt(key) === 0x74 /* t */) {
      this.t = isNull(text, start, end) ? null : plainString(text, start, end);
      if (this.t === undefined) return -1;
    }
    return end;
  }

  /** A member of `d`: its id, guild_id and channel_id read on the way (JSON.parse's: the last). */
  private payloadMember(key: number, keyEnd: number): number {
    const text = this.text;
    const start = keyEnd + 2;
    const end = valueEnd(text, start);
    if (end < 0) return -1;
    const field = readField(text, key, keyEnd - key);
    if (field === NOT_READ) return end;
    let value: string | undefined;
    if (text.charCodeAt(start) === QUOTE) {
      value = plainString(text, start, end);
      // An escape in an id (never sent): JSON.parse reads the frame.
      if (value === undefined) return -1;
    }
    if (field === ID) this.id = value;
    else if (field === GUILD_ID) this.guildId = value;
    else this.channelId = value;
    return end;
  }
}

const NOT_READ = 0;
const ID = 1;
const GUILD_ID = 2;
const CHANNEL_ID = 3;

/** Which of the fields the forwarder reads (dedup-key.ts, queue-names.ts' orderKey) a key is. */
function readField(text: string, key: number, length: number): number {
  if (length === 2 && text.startsWith('id', key)) return ID;
  if (length === 8 && text.startsWith('guild_id', key)) return GUILD_ID;
  if (length === 10 && text.startsWith('channel_id', key)) return CHANNEL_ID;
  return NOT_READ;
}

function isNull(text: string, start: number, end: number): boolean {
  return end - start === 4 && text.startsWith('null', start);
}

/** A string value without escapes (ids, event names), or undefined. */
function plainString(text: string, start: number, end: number): string | undefined {
  if (text.charCodeAt(start) !== QUOTE) return undefined;
  const value = text.slice(start + 1, end - 1);
  return value.includes('\\') ? undefined : value;
}

/** An integer value, null, or undefined when it is neither. */
function integerOrNull(text: string, start: number, end: number): number | null | undefined {
  if (isNull(text, start, end)) return null;
  const n = Number(text.slice(start, end));
  return Number.isSafeInteger(n) ? n : undefined;
}

const reader = new FrameReader();

/**
 * The frame's envelope and its `d` as text, in one pass; undefined when the frame is not one this
 * reads (JSON.parse then reads it). Not a validator of every token: Discord sends valid JSON.
 */
export function readFrame(text: string): GatewayFrame | undefined {
  return reader.read(text);
}
