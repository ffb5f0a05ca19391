// The demo's scenario, short enough for a test: 1500 guilds on 4 shards, 3 s of steady traffic,
// a burst that still scales the workers, 5 interactions, then the reshard to 6 shards. Shared by the demo test and
// the live-dashboard test, which must see the same system.
export const SHORT_DEMO_ARGS = [
  '--guilds',
  '1500',
  '--duration',
  '3',
  '--burst',
  '1500',
  '--interactions',
  '5',
  '--scale-down-window',
  '3',
];
