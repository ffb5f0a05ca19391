// The real node: pods run in containers by containerd/runc, their probes run by the kubelet,
// Services by kube-proxy; and stopping it leaves the host as it was.
import { existsSync } from 'node:fs';
import {
  CLUSTER_DOMAIN,
  NODE_IMAGES,
  realNodeUnavailable,
  startControlPlane,
  startRealNode,
  waitUntil,
  type ControlPlane,
  type RealNode,
} from '../../testenv/index.js';
import { hostWitness, nothingLeft } from '../support/host-snapshot.js';

const unavailable = realNodeUnavailable();
if (unavailable) console.warn(`SKIPPING the real-node tests: ${unavailable}`);

function webPod(name: string, probePort: number) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: name } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'httpd',
          image: NODE_IMAGES.busybox,
          imagePullPolicy: 'IfNotPresent',
          command: [
            'sh',
            '-c',
            'mkdir /tmp/www && echo "hello from $(hostname)" > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www',
          ],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/index.html', port: probePort }, periodSeconds: 1 },
        },
      ],
    },
  };
}

(unavailable && process.env.CI !== 'true' ? describe.skip : describe)(
  'real node (containerd + runc + CNI bridge, kubelet, kube-proxy, CoreDNS)',
  () => {
    let cp: ControlPlane;
    let node: RealNode;
    const host = hostWitness();
    const ns = 'real-node-test';
    const kubectl = (args: string[], input?: string) => cp.kubectl(['-n', ns, ...args], input);
    const podField = (name: string, jsonpath: string) =>
      kubectl(['get', 'pod', name, '-o', `jsonpath=${jsonpath}`]);

    beforeAll(async () => {
      cp = await startControlPlane({ controllers: true, scheduler: true, podAccess: true });
      node = await startRealNode(cp, { onLocked: host.onLocked });
      cp.kubectl(['create', 'namespace', ns]);
      await waitUntil('the default ServiceAccount', async () => {
        try {
          kubectl(['get', 'serviceaccount', 'default']);
          return true;
        } catch {
          return false;
        }
      });
    }, 900_000);
    afterAll(async () => {
      await node?.stop();
      await cp?.stop();
    }, 300_000);

    test('a pod from an imported image runs in a container and becomes Ready through the kubelet probe', async () => {
      kubectl(['apply', '-f', '-'], JSON.stringify(webPod('web', 8080)));
      kubectl(['apply', '-f', '-'], JSON.stringify(webPod('web-wrong-probe', 8081)));
      await waitUntil(
        'pod web Ready',
        async () => podField('web', '{.status.conditions[?(@.type=="Ready")].status}') === 'True',
        {
          timeoutMs: 180_000,
          intervalMs: 500,
        },
      );
      expect(podField('web', '{.spec.nodeName}')).toBe(node.name);
      const podIp = podField('web', '{.status.podIP}');
      expect(podIp.startsWith(node.podSubnet.split('.').slice(0, 3).join('.') + '.')).toBe(true);
      // The container really runs: exec through the apiserver, kubelet and containerd.
      expect(kubectl(['exec', 'web', '--', 'cat', '/tmp/www/index.html'])).toBe('hello from web\n');
      expect(node.crictl(['ps', '--name', 'httpd', '-q']).trim().split('\n')).toHaveLength(2);

      // The same pod probed on a port nothing listens on runs but never becomes Ready.
      await waitUntil(
        'a failed readiness probe on web-wrong-probe',
        async () =>
          kubectl([
            'get',
            'events',
            '--field-selector',
            'involvedObject.name=web-wrong-probe,reason=Unhealthy',
            '-o',
            'name',
          ]) !== '',
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      expect(podField('web-wrong-probe', '{.status.phase}')).toBe('Running');
      expect(podField('web-wrong-probe', '{.status.conditions[?(@.type=="Ready")].status}')).toBe('False');
    }, 600_000);

    /**
     * A pod that GETs http://<host>/index.html until it answers 200 (kube-proxy and DNS catch up)
     * and prints the body. With nc: Debian's busybox-static wget segfaults here.
     */
    async function fetchFromPod(name: string, host: string): Promise<string> {
      const get = `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 ${host} 80 | tr -d '\\r'`;
      kubectl(
        ['apply', '-f', '-'],
        JSON.stringify({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name },
          spec: {
            restartPolicy: 'Never',
            terminationGracePeriodSeconds: 1,
            containers: [
              {
                name: 'fetch',
                image: NODE_IMAGES.busybox,
                command: [
                  'sh',
                  '-c',
                  `until out=$(${get}) && echo "$out" | grep -q '^HTTP/1.1 200'; do sleep 1; done; echo "$out" | sed '1,/^$/d'`,
                ],
              },
            ],
          },
        }),
      );
      await waitUntil(
        `pod ${name} Succeeded`,
        async () => {
          const phase = podField(name, '{.status.phase}');
          if (phase === 'Failed') throw new Error(`${name} failed: ${kubectl(['logs', name])}`);
          return phase === 'Succeeded';
        },
        { timeoutMs: 180_000, intervalMs: 500 },
      );
      return kubectl(['logs', name]);
    }

    test('a Service in front of the pod is reachable from another pod', async () => {
      kubectl(['expose', 'pod', 'web', '--port', '80', '--target-port', '8080']);
      const clusterIp = kubectl(['get', 'service', 'web', '-o', 'jsonpath={.spec.clusterIP}']);
      expect(await fetchFromPod('client-ip', clusterIp)).toBe('hello from web\n');
    }, 300_000);

    test('Service names resolve through cluster DNS (CoreDNS) inside pods', async () => {
      expect(await fetchFromPod('client-fqdn', `web.${ns}.svc.${CLUSTER_DOMAIN}`)).toBe('hello from web\n');
      // The short name works through the pod's search path, as in any cluster.
      expect(await fetchFromPod('client-short', 'web')).toBe('hello from web\n');
    }, 600_000);

    test('stop() leaves no process, mount, network namespace, link, iptables rule or cgroup behind', async () => {
      const dir = node.dir;
      await node.stop({ beforeRelease: host.beforeRelease });
      // Nothing that was not there before start (see leftSince).
      const left = host.left();
      expect(left).toEqual(nothingLeft(left));
      expect(existsSync(dir)).toBe(false);
    }, 300_000);
  },
);
