// A batch body's bytes in each encoding (queue-names.ts, BATCH_BODY_ENCODINGS): written by the
// gateway's forwarder, read by the workers. Level 1: the Ear's core bounds its forwarding rate,
// and a batch of one bot's events compresses well at the fastest level (docs/benchmarks.md,
// "Compressed batch bodies").
import { constants, deflateRawSync, inflateRawSync } from 'node:zlib';
import type { BatchBodyEncoding } from './queue-names.js';

/** The JSON of `dispatches`, encoded. */
export function encodeBatchBody(dispatches: unknown[], encoding: BatchBodyEncoding): string | Buffer {
  const json = JSON.stringify(dispatches);
  return encoding === 'json' ? json : deflateRawSync(json, { level: constants.Z_BEST_SPEED });
}

/** The JSON text of a body stored in `encoding` (bytes that do not inflate say so). */
export function decodeBatchBody(body: Buffer, encoding: BatchBodyEncoding): string {
  if (encoding === 'json') return body.toString('utf8');
  try {
    return inflateRawSync(body).toString('utf8');
  } catch (err) {
    throw new Error(`does not inflate: ${(err as Error).message}`, { cause: err });
  }
}
