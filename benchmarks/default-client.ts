// A discord.js v14 Client with default options (caches on), for the gateway benchmark to
// compare against. Prints JSON lines: {"ready":rssMb} once every guild arrived, then
// {"received":n,"ms":t} when `count` MESSAGE_CREATE events have been handled.
import { Client, GatewayIntentBits } from 'discord.js';

const [apiUrl, token, countText] = process.argv.slice(2);
const count = Number(countText);
const client = new Client({
  intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages],
  shards: 'auto',
  rest: { api: apiUrl },
});
let received = 0;
let first = 0;
client.on('messageCreate', () => {
  if (received === 0) first = performance.now();
  received += 1;
  if (received === count) console.log(JSON.stringify({ received, ms: performance.now() - first }));
});
client.once('clientReady', () => {
  setTimeout(
    () =>
      console.log(
        JSON.stringify({ ready: process.memoryUsage().rss / 1048576, guilds: client.guilds.cache.size }),
      ),
    2_000,
  );
});
await client.login(token);
