// The operator process talks to the apiserver with its own client (operator/kube/api-client.ts):
// `@kubernetes/client-node`, whose generated API and model modules alone were ~80 MB of its
// memory, is a source of types only and must never be loaded while it runs. And the client
// authenticates as a pod does, with its ServiceAccount's token.
import { copyFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { V1Secret } from '@kubernetes/client-node';
import { KubeClient } from '../../operator/kube/api-client.js';
import { describeError } from '../../operator/kube/cluster.js';
import { inClusterConnection } from '../../operator/kube/kubeconfig.js';
import type { WatchEvent } from '../../operator/kube/watch-lines.js';
import { waitUntil, type ManagedProcess } from '../../testenv/index.js';
import { loggedPort, startShardwarden } from '../support/built-entrypoint.js';
import { applyYaml, exampleBot, readBot, secret, startHarness, type Harness } from './harness.js';

// Records the URL of every module the process loads (Node's synchronous module hooks).
const RECORDER = `
import { registerHooks } from 'node:module';
import { appendFileSync } from 'node:fs';
registerHooks({
  load(url, context, next) {
    appendFileSync(process.env.LOADED_MODULES_FILE, url + '\\n');
    return next(url, context);
  },
});
`;

describe("the operator's own apiserver client, at run time", () => {
  let h: Harness;
  let operator: ManagedProcess | undefined;

  beforeAll(async () => {
    h = await startHarness({ controllers: false, simulator: { guilds: 10, tokens: ['t'] } });
  }, 120_000);
  afterAll(async () => {
    await operator?.stop();
    await h?.stop();
  });

  test('leads, reconciles a bot and loads no @kubernetes/client-node module', async () => {
    const recorder = join(h.cp.dir, 'record-modules.mjs');
    const loaded = join(h.cp.dir, 'operator-modules.txt');
    writeFileSync(recorder, RECORDER);
    writeFileSync(loaded, '');
    operator = startShardwarden(
      'operator',
      [
        'operator',
        '--identity=modules',
        '--lease-namespace=default',
        '--http-port=0',
        '--http-host=127.0.0.1',
        `--discord-api-url=${h.sim.apiUrl}`,
      ],
      {
        KUBECONFIG: h.cp.kubeconfigPath,
        NODE_OPTIONS: `--import=${pathToFileURL(recorder).href}`,
        LOADED_MODULES_FILE: loaded,
      },
      join(h.cp.dir, 'operator.log'),
    );
    const port = await loggedPort(operator);
    applyYaml(h.cp, [
      secret('default', 'mods-discord', { token: 't' }),
      secret('default', 'mods-redis', { url: 'redis://127.0.0.1:1' }),
      exampleBot('default', 'mods'),
    ]);
    // Every path the operator takes at run time has run: the Lease, lists and watches, server-side
    // apply of owned objects and of the status, the Secret reads.
    await waitUntil(
      'the bot has a status and its gateway StatefulSet',
      async () =>
        !!(await readBot(h.kc, 'default', 'mods')).status?.conditions?.some((c) => c.type === 'Ready') &&
        h.cp.kubectl(['get', 'statefulsets', '-n', 'default', '-o', 'name']).includes('mods-gateway'),
      { timeoutMs: 90_000, intervalMs: 250 },
    );
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/^shardwarden_operator_leader 1$/m);

    const modules = readFileSync(loaded, 'utf8').split('\n').filter(Boolean);
    // The recorder saw the operator's own modules (it works) ...
    expect(modules.some((m) => m.endsWith('/operator/controller/discordbot-controller.js'))).toBe(true);
    expect(modules.some((m) => m.endsWith('/operator/leader-election/lease-elector.js'))).toBe(true);
    // ... and nothing of client-node.
    expect(modules.filter((m) => m.includes('/@kubernetes/client-node/'))).toEqual([]);
  }, 180_000);

  test("in a pod: the ServiceAccount's token file (read again when rotated), CA and service address", async () => {
    // The kubelet's layout: `token` and `ca.crt` link into `..data`, a link to a timestamped
    // directory; a rotation writes a new directory and swaps `..data` to it in one rename.
    const dir = join(h.cp.dir, 'serviceaccount');
    mkdirSync(dir);
    const tokenOf = (sa: string) => {
      h.cp.kubectl(['create', 'serviceaccount', sa, '-n', 'default']);
      return h.cp.kubectl(['create', 'token', sa, '-n', 'default']).trim();
    };
    const project = (version: string, token: string) => {
      mkdirSync(join(dir, version));
      copyFileSync(join(h.cp.dir, 'ca.crt'), join(dir, version, 'ca.crt'));
      writeFileSync(join(dir, version, 'token'), token);
      symlinkSync(version, join(dir, '..data_tmp'));
      renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
    };
    project('..2026_12_01_00_00_00.1', tokenOf('first'));
    symlinkSync('..data/token', join(dir, 'token'));
    symlinkSync('..data/ca.crt', join(dir, 'ca.crt'));
    const apiserver = new URL(h.cp.url);
    const client = new KubeClient(
      inClusterConnection(
        { KUBERNETES_SERVICE_HOST: apiserver.hostname, KUBERNETES_SERVICE_PORT: apiserver.port },
        dir,
      ),
    );
    // Neither account may list Secrets: the refusal names who the apiserver took us for.
    const whoAmI = () =>
      client.list('/api/v1/namespaces/default/secrets').then(
        () => 'allowed',
        (err: unknown) => describeError(err),
      );
    try {
      expect(await whoAmI()).toContain(
        '"system:serviceaccount:default:first" cannot list resource "secrets"',
      );
      const second = tokenOf('second');
      project('..2026_12_01_00_50_00.2', second);
      const refused = await whoAmI();
      expect(refused).toContain('"system:serviceaccount:default:second" cannot list resource "secrets"');
      expect(refused).not.toContain(second);
    } finally {
      client.close();
    }
  });

  test('Secrets are listed and watched as metadata only: their values never arrive', async () => {
    const client = KubeClient.fromKubeConfig(h.kc);
    const path = '/api/v1/namespaces/default/secrets';
    const create = (name: string, value: string) =>
      h.cp.kubectl(['create', 'secret', 'generic', name, `--from-literal=token=${value}`, '-n', 'default']);
    const values = (v: string) => [v, Buffer.from(v).toString('base64')];
    try {
      // Of nothing, the apiserver answers `items: null`.
      h.cp.kubectl(['create', 'namespace', 'no-secrets']);
      expect(
        await client.list('/api/v1/namespaces/no-secrets/secrets', { metadataOnly: true }),
      ).toMatchObject({ items: [] });
      create('meta-listed', 'listed-value');
      const list = await client.list<V1Secret>(path, { metadataOnly: true });
      const listed = list.items.find((s) => s.metadata?.name === 'meta-listed');
      expect(listed?.metadata?.uid).toBeTruthy();
      expect(listed?.data).toBeUndefined();
      for (const v of values('listed-value')) expect(JSON.stringify(list)).not.toContain(v);

      const events: WatchEvent<V1Secret>[] = [];
      const stop = new AbortController();
      const watching = client.watch<V1Secret>(
        path,
        { resourceVersion: list.metadata?.resourceVersion ?? '', metadataOnly: true },
        (e) => events.push(e),
        stop.signal,
      );
      create('meta-watched', 'watched-value');
      await waitUntil('the new Secret was watched', async () =>
        events.some((e) => e.type === 'ADDED' && e.object.metadata?.name === 'meta-watched'),
      );
      stop.abort();
      await watching;
      const added = events.find((e) => e.object.metadata?.name === 'meta-watched')!;
      expect(added.object).toMatchObject({
        kind: 'PartialObjectMetadata',
        metadata: { name: 'meta-watched' },
      });
      expect(added.object.data).toBeUndefined();
      for (const v of values('watched-value')) expect(JSON.stringify(events)).not.toContain(v);
    } finally {
      client.close();
    }
  });
});
