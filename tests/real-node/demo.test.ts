// `make demo DEMO_ARGS="--node real"`, shortened: the same narrated scenario as tests/demo (the
// program as a user runs it), with the bot's pods as containers of the demo bot image on a real
// node. It takes the machine-wide real-node lock (through testenv, in the demo process), so it
// waits while another run holds it.
import { projectImageUnavailable, realNodeUnavailable } from '../../testenv/index.js';
import { runShortDemo } from '../support/short-demo.js';

const unavailable = realNodeUnavailable() ?? projectImageUnavailable();
if (unavailable) console.warn(`SKIPPING the demo-on-the-real-node test: ${unavailable}`);

(unavailable && process.env.CI !== 'true' ? describe.skip : describe)('make demo --node real', () => {
  test('a short scenario with the pods in containers runs to "DEMO OK" with 0 lost and 0 duplicated, and leaves nothing running', async () => {
    const out = await runShortDemo('real');
    for (const line of [
      /demo bot image FROM the project image/,
      /node \S+ Ready at \S+, pod network 10\.\S+; shardwarden\.local\/shardwarden-demo:[0-9a-f]{16} imported/,
      // Scraped at the pod's own address on the bridge, not through a loopback port.
      /demo-bot-gateway-0\s+pod IP (\d+\.\d+\.\d+\.\d+) {2}metrics http:\/\/\1:8080\/metrics/,
      /the real node and its containers/,
    ])
      expect(out).toMatch(line);
    expect(out).not.toMatch(/WARNING: no real node/);
  }, 2_400_000);
});
