// The pure parts of the operator's own apiserver client: kubeconfig parsing, watch line
// splitting, error shaping, REST paths, and the informer cache (kube-client-http.test.ts has
// its behaviour on the wire).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ObjectCache } from '../../operator/controller/object-cache.js';
import { apiErrorOf, KubeClient } from '../../operator/kube/api-client.js';
import { apiserverCode, describeError } from '../../operator/kube/cluster.js';
import {
  connectionFromKubeConfig,
  defaultConnection,
  inClusterConnection,
  KubeconfigError,
  parseKubeconfig,
} from '../../operator/kube/kubeconfig.js';
import { objectPath } from '../../operator/kube/resources.js';
import { LineSplitter, parseWatchLine } from '../../operator/kube/watch-lines.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');

const KUBECONFIG = `apiVersion: v1
kind: Config
current-context: b
clusters:
- name: a
  cluster: { server: 'https://a.example:6443' }
- name: b
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority-data: ${b64('CA PEM')}
users:
- name: admin
  user:
    token: secret-token
- name: cert
  user:
    client-certificate: certs/user.crt
    client-key: /abs/user.key
contexts:
- name: a
  context: { cluster: a, user: cert }
- name: b
  context: { cluster: b, user: admin, namespace: default }
`;

describe('kubeconfig', () => {
  test('the current context: server without trailing slash, inline CA decoded, token', async () => {
    expect(await parseKubeconfig([{ text: KUBECONFIG, dir: '/home/me/.kube', where: 'config' }])).toEqual({
      server: 'https://127.0.0.1:6443',
      ca: { data: 'CA PEM' },
      clientCert: undefined,
      clientKey: undefined,
      insecureSkipTlsVerify: undefined,
      tlsServerName: undefined,
      token: 'secret-token',
      tokenFile: undefined,
    });
  });

  test('file paths are relative to the kubeconfig; the first file of a merged list wins', async () => {
    const first = 'current-context: a\n';
    const conn = await parseKubeconfig([
      { text: first, dir: '/x', where: 'one' },
      { text: KUBECONFIG, dir: '/home/me/.kube', where: 'two' },
    ]);
    expect(conn.server).toBe('https://a.example:6443');
    expect(conn.clientCert).toEqual({ file: '/home/me/.kube/certs/user.crt' });
    expect(conn.clientKey).toEqual({ file: '/abs/user.key' });
  });

  test('JSON kubeconfigs (kubectl config view -o json) parse too', async () => {
    const json = JSON.stringify({
      'current-context': 'c',
      clusters: [
        { name: 'c', cluster: { server: 'http://127.0.0.1:8080', 'insecure-skip-tls-verify': true } },
      ],
      contexts: [{ name: 'c', context: { cluster: 'c' } }],
    });
    const conn = await parseKubeconfig([{ text: json, dir: '/', where: 'j' }]);
    expect(conn).toMatchObject({ server: 'http://127.0.0.1:8080', insecureSkipTlsVerify: true });
  });

  test('what the operator cannot use is refused with an error naming it', async () => {
    const parse = (text: string) => parseKubeconfig([{ text, dir: '/', where: 'cfg' }]);
    await expect(parse('clusters: []\n')).rejects.toThrow('cfg: no current-context');
    await expect(parse('current-context: x\n')).rejects.toThrow('current-context "x" is not in contexts');
    await expect(parse(KUBECONFIG.replace('token: secret-token', 'exec: { command: aws }'))).rejects.toThrow(
      'user "admin" sets exec',
    );
    await expect(parse('current-context: [\n')).rejects.toThrow('cfg: not YAML');
  });

  test('impersonation, a proxy, and a CA with insecure-skip-tls-verify are refused, not ignored', async () => {
    const parse = (text: string) => parseKubeconfig([{ text, dir: '/', where: 'cfg' }]);
    for (const field of ['as: someone-else', 'as-uid: "1"', 'as-groups: [admins]'])
      await expect(parse(KUBECONFIG.replace('token: secret-token', field))).rejects.toThrow(
        `cfg: user "admin" sets ${field.split(':')[0]}, which the operator does not support`,
      );
    await expect(
      parse(
        KUBECONFIG.replace(
          'server: https://127.0.0.1:6443/',
          'server: https://127.0.0.1:6443/\n    proxy-url: http://proxy:3128',
        ),
      ),
    ).rejects.toThrow('cfg: cluster "b" sets proxy-url');
    await expect(
      parse(
        KUBECONFIG.replace(
          'server: https://127.0.0.1:6443/',
          'server: https://127.0.0.1:6443/\n    insecure-skip-tls-verify: true',
        ),
      ),
    ).rejects.toThrow('cfg: cluster "b" sets both insecure-skip-tls-verify and certificate-authority');
  });

  test('a CA, certificate or key file that cannot be read is a kubeconfig error naming the field', () => {
    const missing = (field: 'ca' | 'clientCert' | 'clientKey') => () =>
      new KubeClient({ server: 'https://127.0.0.1:6443', [field]: { file: '/nonexistent/x.pem' } });
    expect(missing('ca')).toThrow(
      new KubeconfigError('certificate-authority /nonexistent/x.pem: cannot read (ENOENT)'),
    );
    expect(missing('clientCert')).toThrow('client-certificate /nonexistent/x.pem: cannot read (ENOENT)');
    expect(missing('clientKey')).toThrow('client-key /nonexistent/x.pem: cannot read (ENOENT)');
  });

  test('in a pod: the ServiceAccount token file and CA, and the Service address (IPv6 bracketed)', () => {
    expect(
      inClusterConnection({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa'),
    ).toEqual({ server: 'https://[fd00::1]:443', ca: { file: '/sa/ca.crt' }, tokenFile: '/sa/token' });
    expect(() => inClusterConnection({}, '/sa')).toThrow('KUBERNETES_SERVICE_HOST');
  });

  test("kubectl's order: KUBECONFIG, then ~/.kube/config, then the ServiceAccount", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
    try {
      const sa = join(dir, 'sa');
      mkdirSync(sa);
      writeFileSync(join(sa, 'token'), 't');
      const inPod = { HOME: dir, KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
      expect((await defaultConnection(inPod, sa)).server).toBe('https://10.0.0.1:443');
      mkdirSync(join(dir, '.kube'));
      writeFileSync(join(dir, '.kube', 'config'), KUBECONFIG);
      expect((await defaultConnection(inPod, sa)).server).toBe('https://127.0.0.1:6443');
      const listed = join(dir, 'listed');
      writeFileSync(listed, KUBECONFIG.replace('current-context: b', 'current-context: a'));
      expect((await defaultConnection({ ...inPod, KUBECONFIG: listed }, sa)).server).toBe(
        'https://a.example:6443',
      );
      // A listed file that does not exist is skipped, as kubectl skips it; none existing is an error.
      expect(
        (await defaultConnection({ ...inPod, KUBECONFIG: `${join(dir, 'missing')}:${listed}` }, sa)).server,
      ).toBe('https://a.example:6443');
      await expect(defaultConnection({ KUBECONFIG: join(dir, 'missing') }, sa)).rejects.toThrow(
        `none of the kubeconfig files exists: ${join(dir, 'missing')}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a client-node KubeConfig's current context gives the same connection", () => {
    const kc = new KubeConfig();
    kc.loadFromString(KUBECONFIG);
    expect(connectionFromKubeConfig(kc)).toMatchObject({
      server: 'https://127.0.0.1:6443',
      ca: { data: 'CA PEM' },
      token: 'secret-token',
    });
  });
});

describe('watch lines', () => {
  test('events split across chunks anywhere come out whole, one per line', () => {
    const events = [
      { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } },
      { type: 'DELETED', object: { metadata: { name: 'ü', resourceVersion: '3' } } },
    ];
    const text = events.map((e) => JSON.stringify(e)).join('\n') + '\n';
    for (const size of [1, 7, 50, text.length]) {
      const lines = new LineSplitter();
      const out: unknown[] = [];
      for (let i = 0; i < text.length; i += size)
        for (const line of lines.push(text.slice(i, i + size))) out.push(parseWatchLine(line));
      expect(out).toEqual(events);
    }
  });

  test('an unfinished last line waits for its end; a line that is not an event is refused', () => {
    const lines = new LineSplitter();
    expect(lines.push('{"type":"ADDED"')).toEqual([]);
    expect(lines.push(',"object":{}}\n')).toEqual(['{"type":"ADDED","object":{}}']);
    expect(() => parseWatchLine('{"kind":"Status"}')).toThrow('not a watch event');
    expect(() => parseWatchLine('<html>')).toThrow();
  });
});

describe('apiserver errors', () => {
  const status = (code: number, message: string) =>
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message,
      reason: 'Conflict',
      code,
    });

  test('carry the HTTP code and the Status message, as cluster.ts reads them', () => {
    const err = apiErrorOf(409, status(409, 'the object has been modified'), 'PATCH /apis/apps/v1/x');
    expect(apiserverCode(err)).toBe(409);
    expect(describeError(err)).toBe('HTTP 409: the object has been modified');
    expect(err.message).toBe('HTTP 409: the object has been modified');
  });

  test('a body that is not a Status is left out (it could echo anything)', () => {
    const err = apiErrorOf(502, '<html>Authorization: Bearer abc</html>', 'GET /api/v1/secrets');
    expect(apiserverCode(err)).toBe(502);
    expect(describeError(err)).toBe('HTTP 502: GET /api/v1/secrets: Bad Gateway');
    expect(describeError(err)).not.toContain('Bearer');
  });

  test('a network error has no HTTP code', () => {
    const err = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' });
    expect(apiserverCode(err)).toBeUndefined();
    expect(describeError(err)).toBe('connect ECONNREFUSED 127.0.0.1:6443');
  });
});

describe('REST paths', () => {
  const meta = { name: 'bot-gateway', namespace: 'prod' };
  test('core, grouped and custom kinds', () => {
    expect(objectPath({ apiVersion: 'v1', kind: 'Service', metadata: meta })).toBe(
      '/api/v1/namespaces/prod/services/bot-gateway',
    );
    expect(objectPath({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: meta })).toBe(
      '/apis/apps/v1/namespaces/prod/statefulsets/bot-gateway',
    );
    expect(objectPath({ apiVersion: 'shardwarden.io/v1alpha1', kind: 'DiscordBot', metadata: meta })).toBe(
      '/apis/shardwarden.io/v1alpha1/namespaces/prod/discordbots/bot-gateway',
    );
    expect(() => objectPath({ apiVersion: 'v1', kind: 'Pod', metadata: meta })).toThrow(
      'no REST path known for Pod v1',
    );
  });
});

describe('informer cache', () => {
  const obj = (ns: string, name: string, rv: string) => ({
    metadata: { namespace: ns, name, resourceVersion: rv },
  });

  test('events change it once per version; a relist reports what went and what changed', () => {
    const cache = new ObjectCache();
    expect(cache.put(obj('a', 'x', '1'))).toBe('add');
    expect(cache.put(obj('a', 'x', '1'))).toBeUndefined();
    expect(cache.put(obj('a', 'x', '2'))).toBe('update');
    expect(cache.put(obj('b', 'y', '3'))).toBe('add');
    expect(cache.list().length).toBe(2);
    expect(cache.list('b')).toEqual([obj('b', 'y', '3')]);
    expect(cache.replace([obj('a', 'x', '2'), obj('a', 'z', '4')])).toEqual([
      ['delete', obj('b', 'y', '3')],
      ['add', obj('a', 'z', '4')],
    ]);
    expect(cache.remove(obj('a', 'x', '5'))).toBe('delete');
    expect(cache.remove(obj('a', 'x', '5'))).toBeUndefined();
    expect(cache.get('z', 'a')).toEqual(obj('a', 'z', '4'));
  });

  test('it finds the objects of one controller and of one name, through every change', () => {
    const owned = (ns: string, name: string, rv: string, uid: string, controller = true) => ({
      metadata: {
        namespace: ns,
        name,
        resourceVersion: rv,
        ownerReferences: [{ apiVersion: 'v1', kind: 'DiscordBot', name: 'b', uid, controller }],
      },
    });
    const cache = new ObjectCache({ byOwner: true, byName: true });
    cache.put(owned('a', 'x', '1', 'bot-1'));
    cache.put(owned('a', 'y', '1', 'bot-1'));
    cache.put(owned('b', 'x', '1', 'bot-2'));
    cache.put(owned('b', 'z', '1', 'bot-3', false));
    expect(cache.listOwnedBy('bot-1').map((o) => o.metadata?.name)).toEqual(['x', 'y']);
    expect(cache.listOwnedBy('bot-3')).toEqual([]); // an owner that is not the controller
    expect(cache.listNamed('x').map((o) => o.metadata?.namespace)).toEqual(['a', 'b']);
    // Adopted by another controller: found under the new one only.
    cache.put(owned('a', 'y', '2', 'bot-2'));
    expect(cache.listOwnedBy('bot-1').map((o) => o.metadata?.name)).toEqual(['x']);
    expect(cache.listOwnedBy('bot-2').map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`)).toEqual([
      'b/x',
      'a/y',
    ]);
    // Orphaned (its owner reference removed): under no owner any more, still found by name.
    cache.put({ metadata: { namespace: 'a', name: 'y', resourceVersion: '3' } });
    expect(cache.listOwnedBy('bot-2').map((o) => `${o.metadata?.namespace}/${o.metadata?.name}`)).toEqual([
      'b/x',
    ]);
    expect(cache.listNamed('y').map((o) => o.metadata?.resourceVersion)).toEqual(['3']);
    cache.put(owned('a', 'y', '4', 'bot-2')); // adopted again
    // Deleted (the event's copy may carry less than the cached one), then gone by a relist.
    cache.remove({ metadata: { namespace: 'a', name: 'x' } });
    expect(cache.listOwnedBy('bot-1')).toEqual([]);
    expect(cache.listNamed('x').map((o) => o.metadata?.namespace)).toEqual(['b']);
    cache.replace([owned('a', 'y', '4', 'bot-2')]);
    expect(cache.listOwnedBy('bot-2').map((o) => o.metadata?.name)).toEqual(['y']);
    expect(cache.listNamed('x')).toEqual([]);
    // A cache keeps only the indexes it was made with.
    expect(() => new ObjectCache().listOwnedBy('bot-1')).toThrow('this cache keeps no owner index');
  });
});
