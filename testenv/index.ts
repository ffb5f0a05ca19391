// The test environment: real control plane, Redis and Postgres for tests, benchmarks and the demo.
export {
  startControlPlane,
  KWOK_NODE_ANNOTATION,
  type ControlPlane,
  type ControlPlaneOptions,
} from './control-plane.js';
export { startRedis, redisServerArgs, redisServerBinary, type RedisServer } from './redis.js';
export { startRedisCluster, type RedisClusterServer, type RedisClusterNode } from './redis-cluster.js';
export {
  startPostgres,
  createAppDatabase,
  remoteClientsHba,
  APP_ROLE,
  APP_PASSWORD,
  type PostgresServer,
} from './postgres.js';
export { kubeBinary, kubeBinaryDir } from './binaries.js';
export { freePort } from './ports.js';
export {
  waitUntil,
  startProcess,
  rssMb,
  memoryMb,
  childPids,
  cpuSeconds,
  type ManagedProcess,
} from './processes.js';
export { makeTempDir } from './tempdir.js';
export { operatorLaunch, renderOperatorLaunch, type OperatorLaunch } from './operator-launch.js';
export { startAnvil, anvilBinary, type AnvilNode, type AnvilAccount, type AnvilOptions } from './anvil.js';
export {
  deployTestTokens,
  tokenActions,
  compileTestContracts,
  type TestTokens,
  type TokenActions,
} from './contracts/test-tokens.js';
export { startRpcProxy, type RpcProxy, type RpcProxyBehaviour } from './rpc-proxy.js';
export { startTcpProxy, type TcpProxy } from './tcp-proxy.js';
export {
  startPodRunner,
  resolveContainerEnv,
  fieldRefValue,
  expandVars,
  PodEnvError,
  PORT_ENV,
  type PodRunner,
  type PodRunnerOptions,
  type RunPod,
  type EnvLookups,
} from './pod-runner.js';
export {
  runScope,
  interruptedChild,
  startOrFallBack,
  INTERRUPTED_EXIT_CODE,
  type RunScope,
  type RunScopeOptions,
} from './run-scope.js';
export { hostAddress } from './host-address.js';
export {
  startRealNode,
  realNodeUnavailable,
  NODE_IMAGES,
  CLUSTER_DNS_IP,
  CLUSTER_DOMAIN,
  type RealNode,
  type RealNodeOptions,
  type StopOptions,
} from './real-node.js';
export {
  SERVICE_IMAGES,
  POSTGRES_UID,
  redisImageArchive,
  postgresImageArchive,
  postgresReadyCommand,
} from './service-images.js';
export { writeOciArchive, busyboxRootfs, type ImageConfig } from './oci-image.js';
export {
  startPrometheus,
  promtoolBinary,
  prometheusConfig,
  type PrometheusServer,
  type PromSeries,
  type ScrapeTarget,
} from './prometheus.js';
export {
  chromiumBinary,
  chromiumUnavailable,
  loadInChromium,
  screenshotInChromium,
  type LoadedPage,
} from './chromium.js';
export {
  buildProjectImage,
  buildImageOnProject,
  runInImage,
  projectImageUnavailable,
  type ProjectImage,
  type ImageOnProject,
  type BuiltImage,
  type ImageRun,
} from './project-image.js';
export { metricSum } from './metrics-text.js';
