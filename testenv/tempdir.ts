import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh folder for one service; kept when SHARDWARDEN_KEEP_TMP=1 to read the logs. */
export function makeTempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `shardwarden-${prefix}-`));
  return {
    path,
    remove() {
      if (process.env.SHARDWARDEN_KEEP_TMP !== '1') rmSync(path, { recursive: true, force: true });
    },
  };
}
