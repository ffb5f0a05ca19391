// The real node's pure planning: what its cleanup removes from iptables, and what it renders.
import {
  cniConfig,
  iptablesCleanupScript,
  kubeProxyConfig,
  type NodeLayout,
} from '../../testenv/real-node.js';

const before = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SITE-RULES - [0:0]
-A FORWARD -j SITE-RULES
-A SITE-RULES -s 192.0.2.0/24 -j ACCEPT
COMMIT
`;

const after = `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:SITE-RULES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-SERVICES
-A FORWARD -j SITE-RULES
-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD
-A SITE-RULES -s 192.0.2.0/24 -j ACCEPT
-A SITE-RULES -s 198.51.100.0/24 -j ACCEPT
-A KUBE-FORWARD -j KUBE-SERVICES
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:CNI-0a1b2c - [0:0]
-A POSTROUTING -s 10.244.7.2/32 -m comment --comment "name: \\"n\\" id: \\"x\\"" -j CNI-0a1b2c
-A CNI-0a1b2c -d 10.244.7.0/24 -j ACCEPT
COMMIT
`;

describe('iptablesCleanupScript', () => {
  test('deletes the jumps into chains that appeared, then flushes and deletes those chains', () => {
    expect(iptablesCleanupScript(before, after)).toBe(
      [
        '*filter',
        '-D INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-SERVICES',
        '-D FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD',
        '-F KUBE-FORWARD',
        '-F KUBE-SERVICES',
        '-X KUBE-FORWARD',
        '-X KUBE-SERVICES',
        'COMMIT',
        '*nat',
        '-D POSTROUTING -s 10.244.7.2/32 -m comment --comment "name: \\"n\\" id: \\"x\\"" -j CNI-0a1b2c',
        '-F CNI-0a1b2c',
        '-X CNI-0a1b2c',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test("leaves everything else alone: the machine's own chains and rules, even ones added meanwhile", () => {
    expect(iptablesCleanupScript(before, before)).toBe('');
    const script = iptablesCleanupScript(before, after);
    expect(script).not.toContain('SITE-RULES');
    expect(script).not.toContain('198.51.100.0');
  });
});

describe('rendered node configuration', () => {
  const layout: NodeLayout = {
    name: 'shardwarden-node-abcd',
    dir: '/tmp/shardwarden-node-x',
    nodeIp: '192.0.2.2',
    podSubnet: '10.244.7.0/24',
    bridge: 'swbrabcd',
    cgroupRoot: '/shardwarden-node-abcd',
    caFile: '/tmp/cp/ca.crt',
    containerdSocket: '/tmp/shardwarden-node-x/containerd.sock',
    kubeletPort: 1,
    kubeletHealthzPort: 2,
    proxyHealthzPort: 3,
    proxyMetricsPort: 4,
    kubeletKubeconfig: '/k',
    proxyKubeconfig: '/p',
  };

  test('the CNI bridge keeps its IPAM state in the node folder, not /var/lib/cni', () => {
    const bridge = (cniConfig(layout) as { plugins: { ipam?: { dataDir: string; ranges: unknown } }[] })
      .plugins[0]!;
    expect(bridge.ipam).toMatchObject({
      dataDir: '/tmp/shardwarden-node-x/cni/ipam',
      ranges: [[{ subnet: '10.244.7.0/24', gateway: '10.244.7.1' }]],
    });
  });

  test("kube-proxy leaves the machine's conntrack and route_localnet sysctls alone", () => {
    expect(kubeProxyConfig(layout)).toMatchObject({
      mode: 'iptables',
      clusterCIDR: '10.244.7.0/24',
      conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
      iptables: { localhostNodePorts: false },
    });
  });
});
