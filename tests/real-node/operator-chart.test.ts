// `helm install` of the chart on the real node with the image built from the Dockerfile: the
// operator runs as two pods in containers (leader election), made Ready by the kubelet's probes,
// talking to the apiserver with nothing but the ServiceAccount token mounted into them.
import {
  realNodeUnavailable,
  startControlPlane,
  startRealNode,
  waitUntil,
  type ControlPlane,
  type RealNode,
  buildProjectImage,
  projectImageUnavailable,
  type ProjectImage,
} from '../../testenv/index.js';
import { RELEASE_NAMESPACE, installChart } from '../install/helm.js';

const RELEASE = 'sw';
const FULLNAME = 'sw-shardwarden';
const TOKEN_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

const unavailable = realNodeUnavailable() ?? projectImageUnavailable();
if (unavailable) console.warn(`SKIPPING the operator-on-the-real-node tests: ${unavailable}`);

interface Pod {
  metadata: { name: string; deletionTimestamp?: string };
  spec: { nodeName?: string; containers: { image: string; env?: { name: string }[] }[] };
  status: { conditions?: { type: string; status: string }[] };
}

(unavailable && process.env.CI !== 'true' ? describe.skip : describe)(
  'the chart on the real node, with the locally built image',
  () => {
    let built: ProjectImage;
    let cp: ControlPlane;
    let node: RealNode;
    const kubectl = (args: string[]) => cp.kubectl(['-n', RELEASE_NAMESPACE, ...args]);
    const operatorPods = () =>
      (
        JSON.parse(kubectl(['get', 'pods', '-l', `app.kubernetes.io/instance=${RELEASE}`, '-o', 'json'])) as {
          items: Pod[];
        }
      ).items;
    /** The Lease's holder: the POD_NAME of the replica that leads ('' before the first). */
    const leaseHolder = () => {
      try {
        return kubectl(['get', 'lease', FULLNAME, '-o', 'jsonpath={.spec.holderIdentity}']);
      } catch {
        return '';
      }
    };
    /**
     * Waits for two Ready operator pods (other than `gone`); a timeout says why they are not:
     * each pod's phase and readiness, and the namespace's warning events (failed probes, pulls).
     */
    const waitForTwoReady = async (what: string, timeoutMs: number, gone?: string) => {
      const ready = () => operatorPods().filter((p) => p.metadata.name !== gone && isReady(p));
      try {
        await waitUntil(what, async () => ready().length === 2, { timeoutMs, intervalMs: 1000 });
      } catch (err) {
        const pods = kubectl(['get', 'pods', '-o', 'wide']);
        const events = kubectl(['get', 'events', '--field-selector', 'type=Warning']);
        throw new Error(`${(err as Error).message}\n${pods}\n${events}`, { cause: err });
      }
    };
    const isReady = (p: Pod) => p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');

    beforeAll(async () => {
      built = buildProjectImage();
      cp = await startControlPlane({ controllers: true, scheduler: true, podAccess: true });
      node = await startRealNode(cp, { clusterDns: false });
      node.importImage(built.archive);
    }, 1_800_000);
    afterAll(async () => {
      await node?.stop();
      await cp?.stop();
    }, 300_000);

    test('helm install: both operator pods run the image on the node and become Ready through their probes', async () => {
      const [repository, tag] = built.image.split(':');
      const out = installChart(cp.kubeconfigPath, RELEASE, [
        `image.repository=${repository}`,
        `image.tag=${tag}`,
      ]);
      expect(out).toContain('STATUS: deployed');
      await waitForTwoReady('two Ready operator pods', 600_000);
      const pods = operatorPods();
      expect(pods).toHaveLength(2);
      for (const p of pods) {
        expect({ pod: p.metadata.name, node: p.spec.nodeName }).toEqual({
          pod: p.metadata.name,
          node: node.name,
        });
        expect(p.spec.containers[0]!.image).toBe(built.image);
      }
      // Ready through the kubelet's HTTP probes, not a fake node's say-so: the containers run.
      expect(node.crictl(['ps', '--name', 'operator', '-q']).trim().split('\n')).toHaveLength(2);
    }, 900_000);

    test('one replica leads through a Lease, written with only the mounted ServiceAccount token', async () => {
      const names = operatorPods().map((p) => p.metadata.name);
      await waitUntil('a leader in the Lease', async () => names.includes(leaseHolder()), {
        timeoutMs: 120_000,
        intervalMs: 1000,
      });
      const pod = names[0]!;
      const exec = (cmd: string[]) => kubectl(['exec', pod, '-c', 'operator', '--', ...cmd]);
      // Its credentials: the projected token and CA, no kubeconfig anywhere it would look.
      expect(exec(['ls', TOKEN_DIR]).split('\n')).toEqual(
        expect.arrayContaining(['ca.crt', 'namespace', 'token']),
      );
      expect(exec(['node', '-e', 'console.log(process.env.KUBECONFIG ?? "unset")']).trim()).toBe('unset');
      expect(exec(['sh', '-c', 'ls $HOME/.kube 2>&1 || true'])).toMatch(/No such file/);
      // As the chart asks: uid 10001, a read-only root filesystem.
      expect(exec(['id', '-u']).trim()).toBe('10001');
      expect(exec(['sh', '-c', 'touch /app/x 2>&1 || true'])).toMatch(/Read-only file system/);
    }, 300_000);

    test('deleting the leader pod: another replica takes the Lease over', async () => {
      const leader = leaseHolder();
      kubectl(['delete', 'pod', leader, '--wait=false']);
      // The deleted leader hands the Lease back once its controller has stopped; whichever live
      // replica asks first takes it: the standby, or the Deployment's replacement pod if it is
      // up by then (CI run M saw the replacement win), as with client-go's release-on-cancel.
      // Within the lease (15 s) and its retry period; generous for a loaded machine.
      let holder = '';
      await waitUntil(
        'a live replica other than the deleted leader leading',
        async () => {
          holder = leaseHolder();
          return (
            holder !== '' &&
            holder !== leader &&
            operatorPods().some((p) => p.metadata.name === holder && !p.metadata.deletionTimestamp)
          );
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      // The Deployment replaces the deleted pod: two Ready replicas again, through their probes.
      await waitForTwoReady('two Ready operator pods again', 300_000, leader);
    }, 600_000);
  },
);
