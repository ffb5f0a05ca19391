import { OwnWrites } from '../../operator/controller/own-writes.js';

const sts = (resourceVersion: string, readyReplicas?: number) => ({
  kind: 'StatefulSet',
  metadata: { namespace: 'bots', name: 'gw', resourceVersion },
  spec: { replicas: 2 },
  ...(readyReplicas === undefined ? {} : { status: { readyReplicas } }),
});
const bot = (resourceVersion: string, generation: number, status: object = {}) => ({
  metadata: { namespace: 'bots', name: 'sietch', resourceVersion, generation },
  spec: { image: 'bot:1' },
  status,
});

describe('OwnWrites', () => {
  test('the event at the version an apply produced, with the status as it was, is its echo, once', () => {
    const own = new OwnWrites();
    own.record('StatefulSet', sts('10', 1));
    // An earlier version (a change that came before ours) is not it, and keeps ours waiting.
    expect(own.isEcho('StatefulSet', sts('9', 1), 'update', { previous: sts('8', 1) })).toBe(false);
    // Another kind of the same name is another object.
    expect(own.isEcho('Service', sts('10', 1), 'update', { previous: sts('9', 1) })).toBe(false);
    expect(own.isEcho('StatefulSet', sts('10', 1), 'update', { previous: sts('9', 1) })).toBe(true);
    expect(own.isEcho('StatefulSet', sts('10', 1), 'update', { previous: sts('9', 1) })).toBe(false);
    expect(own.size()).toBe(0);
  });

  test("a write that changed nothing is answered with another writer's version: a status it carries is no echo", () => {
    const own = new OwnWrites();
    // The cache has version 101 (1 pod ready); the controller wrote 102 (2 ready); the
    // operator's apply changed nothing and was answered with 102.
    own.record('StatefulSet', sts('102', 2));
    expect(own.isEcho('StatefulSet', sts('102', 2), 'update', { previous: sts('101', 1) })).toBe(false);
  });

  test("a bot's status write is an echo; one answered with someone's spec edit, labels or deletion is not", () => {
    const own = new OwnWrites();
    own.record('DiscordBot', bot('11', 1, { shards: 2 }));
    expect(own.isEcho('DiscordBot', bot('11', 1, { shards: 2 }), 'update', { previous: bot('10', 1) })).toBe(
      true,
    );
    own.record('DiscordBot', bot('13', 2, { shards: 2 }));
    expect(own.isEcho('DiscordBot', bot('13', 2), 'update', { previous: bot('12', 1) })).toBe(false);
    const labelled = { ...bot('15', 2), metadata: { ...bot('15', 2).metadata, labels: { team: 'a' } } };
    own.record('DiscordBot', labelled);
    expect(own.isEcho('DiscordBot', labelled, 'update', { previous: bot('14', 2) })).toBe(false);
    const deleting = {
      ...bot('17', 2),
      metadata: { ...bot('17', 2).metadata, deletionTimestamp: new Date(0) },
    };
    own.record('DiscordBot', deleting);
    expect(own.isEcho('DiscordBot', deleting, 'update', { previous: bot('16', 2) })).toBe(false);
  });

  test('a creation (no status yet) is an echo; a relist, an update without the cached object and a deletion are not', () => {
    const own = new OwnWrites();
    own.record('StatefulSet', sts('5'));
    expect(own.isEcho('StatefulSet', sts('5'), 'add', {})).toBe(true);
    // As the apiserver stores a new StatefulSet's status: zeros.
    const created = { ...sts('5'), status: { replicas: 0, availableReplicas: 0 } };
    own.record('StatefulSet', created);
    expect(own.isEcho('StatefulSet', created, 'add', {})).toBe(true);
    // Put back after its label was taken away (the watch said deleted): it comes back with the
    // controller's status, which the operator has not seen.
    own.record('StatefulSet', sts('9', 2));
    expect(own.isEcho('StatefulSet', sts('9', 2), 'add', {})).toBe(false);
    // The operator never creates a bot.
    own.record('DiscordBot', bot('3', 1));
    expect(own.isEcho('DiscordBot', bot('3', 1), 'add', {})).toBe(false);
    own.record('StatefulSet', sts('6'));
    expect(own.isEcho('StatefulSet', sts('6'), 'update', { relisted: true })).toBe(false);
    own.record('StatefulSet', sts('7'));
    expect(own.isEcho('StatefulSet', sts('7'), 'update', {})).toBe(false);
    own.record('StatefulSet', sts('8'));
    expect(own.isEcho('StatefulSet', sts('8'), 'delete', {})).toBe(false);
    expect(own.size()).toBe(0);
    own.record('StatefulSet', { metadata: { name: 'gw', namespace: 'bots' } });
    expect(own.size()).toBe(0);
  });
});
