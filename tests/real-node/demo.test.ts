// `make demo`, shortened, as a user runs it with no `--node` (the default, `auto`): on a machine
// that can start a real node it must choose it, so the bot's pods run as containers of the demo
// bot image on a real node. The same narrated scenario as tests/demo. It takes the machine-wide
// real-node lock (through testenv, in the demo process), so it waits while another run holds it.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectImageUnavailable, realNodeUnavailable } from '../../testenv/index.js';
import { runShortDemo } from '../support/short-demo.js';

const unavailable = realNodeUnavailable() ?? projectImageUnavailable();
if (unavailable) console.warn(`SKIPPING the demo-on-the-real-node test: ${unavailable}`);

/** Whether a network link of that name exists on this machine. */
function linkExists(name: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

(unavailable && process.env.CI !== 'true' ? describe.skip : describe)(
  'make demo (auto) on the real node',
  () => {
    test('the default picks the real node: a short scenario in containers runs to "DEMO OK" with 0 lost and 0 duplicated, and leaves nothing behind', async () => {
      const out = await runShortDemo('auto');
      // auto said nothing about falling back: it chose the real node.
      expect(out).not.toMatch(/WARNING: no real node/);
      for (const line of [
        /demo bot image FROM the project image/,
        /node shardwarden-node-[0-9a-f]{8} Ready at \S+, pod network 10\.\S+; shardwarden\.local\/shardwarden-demo:[0-9a-f]{16} imported/,
        // What the pods use is on the bridge's gateway address, not the machine's LAN address;
        // the pods reached Redis and Postgres there with their pod IPs (pg_hba allows only those).
        /starting Redis, Postgres, anvil \(also on 10\.244\.\d+\.1, the pods' gateway/,
        // Scraped at the pod's own address on the bridge, not through a loopback port.
        /demo-bot-gateway-0\s+pod IP (\d+\.\d+\.\d+\.\d+) {2}metrics http:\/\/\1:8080\/metrics/,
        /the real node and its containers/,
      ])
        expect(out).toMatch(line);
      // Not only processes: the node's bridge is gone and its traces file (if another run's node
      // has not written its own since) does not name it.
      const id = /node shardwarden-node-([0-9a-f]{8}) Ready/.exec(out)![1]!;
      expect(linkExists(`swbr${id}`)).toBe(false);
      const traces = join(tmpdir(), 'shardwarden-real-node.json');
      if (existsSync(traces)) expect(readFileSync(traces, 'utf8')).not.toContain(`swbr${id}`);
    }, 2_400_000);
  },
);
