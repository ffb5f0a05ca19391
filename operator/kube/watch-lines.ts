// A watch streams one JSON event per line; chunks of the response split lines anywhere.

export interface WatchEvent<T = unknown> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

/** Feeds text chunks in, hands each whole non-empty line out; keeps the unfinished tail. */
export class LineSplitter {
  private tail = '';

  push(chunk: string): string[] {
    const parts = (this.tail + chunk).split('\n');
    this.tail = parts.pop() ?? '';
    return parts.map((l) => l.trim()).filter((l) => l !== '');
  }
}

const TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** One line as a watch event; throws on a line that is not one (the stream is then not trusted). */
export function parseWatchLine<T>(line: string): WatchEvent<T> {
  const event = JSON.parse(line) as Partial<WatchEvent<T>>;
  if (!event || typeof event.type !== 'string' || !TYPES.has(event.type) || typeof event.object !== 'object')
    throw new Error(`watch: not a watch event: ${line.slice(0, 120)}`);
  return event as WatchEvent<T>;
}
