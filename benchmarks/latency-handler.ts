// A handler module for the gateway benchmark's workers (SHARDWARDEN_HANDLER_MODULES): it does
// nothing with a MESSAGE_CREATE but, for the messages of the latency stream (content
// `latency`), record how long after the simulator sent it the handler got it: the simulator
// stamps such a message's `timestamp` when it sends it (`stampTimestamp`), and runs on this
// machine's clock. Figures go to SHARDWARDEN_BENCH_LATENCY_DIR/latency-<pid>.txt, one number
// of milliseconds a line, written a few times a second (not one write per dispatch).
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineBotModule } from '../bot/worker/handlers/bot-module.js';

/** What the latency stream's messages say, so the throughput stream's are not recorded. */
export const LATENCY_CONTENT = 'latency';

const dir = process.env.SHARDWARDEN_BENCH_LATENCY_DIR;
let pending: number[] = [];
if (dir)
  setInterval(() => {
    if (pending.length === 0) return;
    appendFileSync(join(dir, `latency-${process.pid}.txt`), pending.join('\n') + '\n');
    pending = [];
  }, 100).unref();

export default defineBotModule({
  name: 'bench-latency',
  events: [
    {
      type: 'MESSAGE_CREATE',
      handle(event) {
        const m = event.payload as { content?: string; timestamp?: string };
        if (m.content === LATENCY_CONTENT && m.timestamp) pending.push(Date.now() - Date.parse(m.timestamp));
        return Promise.resolve();
      },
    },
  ],
});
