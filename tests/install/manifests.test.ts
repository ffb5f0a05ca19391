// The checked-in install bundle is what `make manifests` renders from the chart today, and the
// examples are complete: every Secret a DiscordBot references is in the same file, with the key,
// holding a value clearly marked as a placeholder.
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { kubeBinaryDir, makeTempDir } from '../../testenv/index.js';
import { parseDocs, type KubeDoc } from './helm.js';

const BUNDLE = ['install.yaml', 'monitoring.yaml'];
const EXAMPLES = 'manifests/examples';

interface SecretRef {
  name: string;
  key?: string;
}
function secretRefs(bot: KubeDoc): { field: string; ref: SecretRef }[] {
  const spec = bot.spec as {
    tokenSecretRef: SecretRef;
    redis: { urlSecretRef: SecretRef };
    database?: { urlSecretRef: SecretRef };
  };
  return [
    { field: 'spec.tokenSecretRef', ref: { key: 'token', ...spec.tokenSecretRef } },
    { field: 'spec.redis.urlSecretRef', ref: { key: 'url', ...spec.redis.urlSecretRef } },
    ...(spec.database
      ? [{ field: 'spec.database.urlSecretRef', ref: { key: 'url', ...spec.database.urlSecretRef } }]
      : []),
  ];
}

describe('manifests/', () => {
  test('the install bundle is current: make manifests renders the same files', () => {
    const tmp = makeTempDir('manifests');
    try {
      execFileSync('manifests/render.sh', [tmp.path], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, HELM: join(kubeBinaryDir(), 'helm') },
      });
      for (const file of BUNDLE) {
        const fresh = readFileSync(join(tmp.path, file), 'utf8');
        const checkedIn = readFileSync(join('manifests', file), 'utf8');
        expect({ file, current: fresh === checkedIn }).toEqual({ file, current: true });
      }
    } finally {
      tmp.remove();
    }
  });

  test('the bundle holds the namespace, the CRD and the operator', () => {
    const kinds = parseDocs(readFileSync('manifests/install.yaml', 'utf8')).map(
      (d) => `${d.kind}/${d.metadata.name}`,
    );
    expect(kinds).toEqual(
      expect.arrayContaining([
        'Namespace/shardwarden-system',
        'CustomResourceDefinition/discordbots.shardwarden.io',
        'Deployment/shardwarden',
        'ClusterRole/shardwarden',
      ]),
    );
    const monitoring = parseDocs(readFileSync('manifests/monitoring.yaml', 'utf8')).map((d) => d.kind);
    expect(monitoring).toEqual([
      'ServiceMonitor',
      'PodMonitor',
      'PrometheusRule',
      'ConfigMap',
      'ConfigMap',
      'ConfigMap',
    ]);
  });

  test('the examples: a small bot, a large fixed-shard bot, a KEDA bot', () => {
    const bots = Object.fromEntries(
      readdirSync(EXAMPLES).map((f) => [
        f,
        parseDocs(readFileSync(join(EXAMPLES, f), 'utf8')).find((d) => d.kind === 'DiscordBot')!,
      ]),
    );
    expect(Object.keys(bots).sort()).toEqual(['keda-bot.yaml', 'large-bot.yaml', 'small-bot.yaml']);
    const spec = (f: string) =>
      bots[f]!.spec as {
        sharding?: { mode: string; shards: number; shardsPerPod: number };
        worker?: { autoscaler: string };
      };
    const large = spec('large-bot.yaml').sharding!;
    expect(large.mode).toBe('Fixed');
    expect(Math.ceil(large.shards / large.shardsPerPod)).toBeGreaterThan(1);
    expect(spec('keda-bot.yaml').worker?.autoscaler).toBe('KEDA');
  });

  test.each(readdirSync(EXAMPLES))(
    '%s: every referenced Secret and key is in the file, as a marked placeholder',
    (file) => {
      const text = readFileSync(join(EXAMPLES, file), 'utf8');
      const docs = parseDocs(text);
      expect(text).toMatch(/^# PLACEHOLDERS:/m);
      for (const doc of docs) expect(doc.metadata.namespace).toBeUndefined(); // applied with -n
      const secrets = new Map(
        docs
          .filter((d) => d.kind === 'Secret')
          .map((s) => [s.metadata.name, s.stringData as Record<string, string>]),
      );
      for (const bot of docs.filter((d) => d.kind === 'DiscordBot'))
        for (const { field, ref } of secretRefs(bot)) {
          const value = secrets.get(ref.name)?.[ref.key!];
          expect({ field, ref, present: value !== undefined }).toEqual({ field, ref, present: true });
        }
      // Every Secret value is visibly a placeholder (REPLACE in the value or its line's comment).
      for (const [name, data] of secrets)
        for (const [key, value] of Object.entries(data)) {
          const line = text.split('\n').find((l) => l.includes(`${key}: ${value}`)) ?? '';
          expect({ secret: name, key, marked: /REPLACE/.test(line) }).toEqual({
            secret: name,
            key,
            marked: true,
          });
        }
    },
  );
});
