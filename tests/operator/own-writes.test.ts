import { OwnWrites } from '../../operator/controller/own-writes.js';

const cm = (name: string, resourceVersion: string) => ({
  metadata: { namespace: 'bots', name, resourceVersion },
});

describe('OwnWrites', () => {
  test('only the event at the version a write produced is its echo, once', () => {
    const own = new OwnWrites();
    own.record('ConfigMap', cm('plan', '10'));
    // An earlier version (a change that came before ours) is not it, and keeps ours waiting.
    expect(own.isEcho('ConfigMap', cm('plan', '9'), 'update')).toBe(false);
    // Another kind of the same name is another object.
    expect(own.isEcho('Service', cm('plan', '10'), 'update')).toBe(false);
    expect(own.isEcho('ConfigMap', cm('plan', '10'), 'update')).toBe(true);
    expect(own.isEcho('ConfigMap', cm('plan', '10'), 'update')).toBe(false);
    expect(own.size()).toBe(0);
  });

  test('a deletion is never an echo and forgets the object; a write without a version records nothing', () => {
    const own = new OwnWrites();
    own.record('StatefulSet', cm('gw', '5'));
    expect(own.isEcho('StatefulSet', cm('gw', '5'), 'delete')).toBe(false);
    expect(own.size()).toBe(0);
    own.record('StatefulSet', { metadata: { name: 'gw', namespace: 'bots' } });
    expect(own.size()).toBe(0);
  });
});
