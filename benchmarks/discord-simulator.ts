// Benchmark: one simulator process serving 10,000 guilds over 64 shards, and the dispatch
// rate it pushes to connected clients. Run with `make bench-simulator`. Prints JSON ending with
// `targets` (docs/benchmarks.md), computed from this run's figures.
//   BENCH_GUILDS, BENCH_SHARDS, BENCH_MEMBERS, BENCH_DISPATCHES override the defaults.
import WebSocket from 'ws';
import { rssMb } from '../testenv/processes.js';
import { runScope } from '../testenv/run-scope.js';
import { startSimulatorProcess } from './simulator-process.js';
import { atLeast, printFigures } from './targets.js';

const guilds = Number(process.env.BENCH_GUILDS ?? 10_000);
const shards = Number(process.env.BENCH_SHARDS ?? 64);
const members = Number(process.env.BENCH_MEMBERS ?? 50);
const dispatches = Number(process.env.BENCH_DISPATCHES ?? 200_000);

// Whatever ends the run (its end, a failure, Ctrl-C), the simulator process stops.
const scope = runScope();
const { child, info } = scope.own(
  await startSimulatorProcess([
    '--guilds',
    String(guilds),
    '--members',
    String(members),
    '--max-concurrency',
    String(shards),
    '--seed',
    '1',
  ]),
  (s) => s.child.kill('SIGTERM'),
);

let received = 0;
let guildCreates = 0;
const sockets: WebSocket[] = [];
const identifyStart = performance.now();
await Promise.all(
  Array.from(
    { length: shards },
    (_, shard) =>
      new Promise<void>((resolve, reject) => {
        const ws = new WebSocket(`${info.gatewayUrl}?v=10&encoding=json`);
        sockets.push(ws);
        let expected = -1;
        let mine = 0;
        ws.on('error', reject);
        ws.on('message', (data: Buffer) => {
          const text = data.toString();
          if (text.includes('"t":"MESSAGE_CREATE"')) {
            received += 1;
            return;
          }
          const p = JSON.parse(text);
          if (p.op === 10) {
            ws.send(
              JSON.stringify({
                op: 2,
                d: { token: info.token, intents: 1 | (1 << 9), shard: [shard, shards], properties: {} },
              }),
            );
            setInterval(() => ws.send('{"op":1,"d":null}'), p.d.heartbeat_interval).unref();
          } else if (p.t === 'READY') {
            expected = p.d.guilds.length;
            if (expected === 0) resolve();
          } else if (p.t === 'GUILD_CREATE') {
            guildCreates += 1;
            if (++mine === expected) resolve();
          }
        });
      }),
  ),
);
const readySeconds = (performance.now() - identifyStart) / 1000;
const rssAfterReady = rssMb(child.pid!);

const streamStart = performance.now();
const res = await fetch(`${info.controlUrl}/dispatch`, {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    type: 'MESSAGE_CREATE',
    count: dispatches,
    data: { content: '', channel_id: '1', id: '1' },
  }),
});
if (!res.ok) throw new Error(`dispatch failed: ${res.status} ${await res.text()}`);
const sentSeconds = (performance.now() - streamStart) / 1000;
while (received < dispatches && performance.now() - streamStart < 120_000)
  await new Promise((r) => setTimeout(r, 10));
const deliveredSeconds = (performance.now() - streamStart) / 1000;

const figures = {
  guilds,
  shards,
  membersPerGuild: members,
  guildCreatesReceived: guildCreates,
  secondsToAllShardsReadyWithGuilds: Number(readySeconds.toFixed(2)),
  simulatorRssMbAfterReady: Math.round(rssAfterReady),
  dispatches,
  dispatchesReceived: received,
  dispatchesPerSecondSent: Math.round(dispatches / sentSeconds),
  dispatchesPerSecondDelivered: Math.round(received / deliveredSeconds),
  simulatorRssMbAfterStream: Math.round(rssMb(child.pid!)),
};
printFigures(figures, [
  atLeast('dispatches delivered per second', figures.dispatchesPerSecondDelivered, 20_000),
]);
for (const ws of sockets) ws.terminate();
await scope.stop();
if (received !== dispatches || guildCreates !== guilds) process.exit(1);
