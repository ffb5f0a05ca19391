import { firstDifference, quantityValue, repairPatch } from '../../operator/reconciler/drift.js';

const service = (port: number, extra: object[] = []) => ({
  metadata: { name: 'bot-gateway', labels: { a: '1' } },
  spec: { ports: [{ name: 'http', port, protocol: 'TCP' }, ...extra] },
});

describe('drift between a rendered object and its live copy', () => {
  test('fields others add do not count; a rendered field changed by hand does', () => {
    const live = {
      metadata: { name: 'bot-gateway', labels: { a: '1', added: 'by-someone' }, resourceVersion: '7' },
      spec: {
        clusterIP: '10.0.0.1',
        ports: [{ name: 'http', port: 8080, protocol: 'TCP', targetPort: 8080 }],
      },
    };
    expect(firstDifference(service(8080), live)).toBeUndefined();
    expect(
      firstDifference(service(8080), { ...live, metadata: { ...live.metadata, labels: { a: '2' } } }),
    ).toBe('.metadata.labels.a');
    expect(firstDifference(service(8080), { ...live, spec: { ports: [{ name: 'http', port: 9999 }] } })).toBe(
      '.spec.ports[http].port',
    );
  });

  test('what the apiserver leaves out is no difference: list items without apiVersion/kind, empty strings', () => {
    const rendered = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'bot-worker' },
      spec: {
        template: {
          spec: { containers: [{ name: 'worker', env: [{ name: 'CHAIN_RPC_URLS', value: '' }] }] },
        },
      },
    };
    // As an informer's first list returns it: no apiVersion or kind, the empty value omitted.
    const listed = {
      metadata: { name: 'bot-worker', resourceVersion: '3' },
      spec: { template: { spec: { containers: [{ name: 'worker', env: [{ name: 'CHAIN_RPC_URLS' }] }] } } },
    };
    expect(firstDifference(rendered, listed)).toBeUndefined();
    expect(repairPatch(rendered, listed)).toBeUndefined();
  });

  test('quantities under resources compare by value, as the apiserver rewrites them', () => {
    expect(quantityValue('500m')).toBeCloseTo(0.5);
    expect(quantityValue('1Gi')).toBe(1024 ** 3);
    expect(quantityValue('1e3')).toBe(1000);
    expect(quantityValue('lots')).toBeUndefined();
    const desired = {
      resources: { requests: { cpu: 0.5, memory: '1024Mi' } },
      env: [{ name: 'X', value: '0.5' }],
    };
    const live = {
      resources: { requests: { cpu: '500m', memory: '1Gi' } },
      env: [{ name: 'X', value: '500m' }],
    };
    expect(firstDifference({ resources: desired.resources }, { resources: live.resources })).toBeUndefined();
    // Elsewhere a string is a string.
    expect(firstDifference(desired, live)).toBe('.env[X].value');
  });

  test('empty rendered maps and lists match absent ones; positional lists must match in length', () => {
    expect(
      firstDifference({ volumes: [{ name: 'tmp', emptyDir: {} }] }, { volumes: [{ name: 'tmp' }] }),
    ).toBeUndefined();
    expect(firstDifference({ args: ['gateway'] }, { args: ['gateway', '--debug'] })).toBe('.args');
  });

  test('the repair patch replaces an edited keyed list with ours plus items of other names', () => {
    const foreign = { name: 'debug', port: 9229 };
    const live = service(9999, [foreign]);
    expect(repairPatch(service(8080), live)).toEqual({
      spec: { ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, foreign] },
    });
    expect(repairPatch(service(8080), service(8080))).toBeUndefined();
  });
});
