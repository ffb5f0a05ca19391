// A local kubelet stand-in for kwok clusters: for every pod that kwok reports Running, run the
// container's entrypoint as a local process with the environment the pod spec gives, so what
// runs is what the operator rendered. Used by the demo and the full-process tests.
//
// What it does like a kubelet: resolves env (value with $(VAR) expansion, secretKeyRef,
// configMapKeyRef, downward-API fieldRef, envFrom) when the container starts; restarts a crashed
// process with doubling back-off and counts restarts in the pod's containerStatuses; mirrors the
// container's httpGet readinessProbe into the pod's Ready condition (kwok marks every pod Ready
// at once, which would let controllers act on processes that are not serving yet); SIGTERM on
// pod removal, SIGKILL of the whole process group after terminationGracePeriodSeconds.
// What differs, since all pods share one machine: SHARDWARDEN_HTTP_PORT and
// SHARDWARDEN_PUBLIC_HTTP_PORT are set to free loopback ports (recorded per pod), and the image's
// own ENV is whatever `env` says.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1Container,
  type V1EnvVar,
  type V1Pod,
} from '@kubernetes/client-node';
import { ResilientInformer } from '../operator/controller/informers.js';
import { KubeClient } from '../operator/kube/api-client.js';
import { createLogger } from '../bot/observability/logger.js';
import { freePort } from './ports.js';
import { startProcess, type ManagedProcess } from './processes.js';

/** The env vars the runner rewrites to free ports (every pod shares the machine's loopback). */
export const PORT_ENV = {
  http: 'SHARDWARDEN_HTTP_PORT',
  publicHttp: 'SHARDWARDEN_PUBLIC_HTTP_PORT',
} as const;

const DEFAULT_ENTRYPOINT = fileURLToPath(new URL('../bin/shardwarden.js', import.meta.url));

export interface PodRunnerOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Pods to run, e.g. `app.kubernetes.io/instance=demo-bot`. */
  labelSelector: string;
  /** Script run with `node <entrypoint> <container args>`; default dist/bin/shardwarden.js. */
  entrypoint?: string;
  /** One log file per pod, `<pod>.log`, appended across restarts. */
  logDir: string;
  /**
   * The image's own ENV (what a Dockerfile's ENV lines give every container), under the pod
   * spec's env: NODE_OPTIONS-like extras, or SHARDWARDEN_HANDLER_MODULES of a bot image that
   * adds handlers. PATH is always the runner's.
   */
  env?: Record<string, string>;
  /** Mirror the readinessProbe into the pod's Ready condition (default true). */
  readiness?: boolean;
  /** Readiness probe period; default the probe's periodSeconds. */
  readinessPeriodMs?: number;
  /** First restart delay after a crash, doubling up to `maxRestartBackoffMs` (1 s, 30 s). */
  restartBackoffMs?: number;
  maxRestartBackoffMs?: number;
  /** The runner's own log (crashes, env errors) on stdout; default warn. */
  logLevel?: 'warn' | 'silent';
}

export interface RunPod {
  name: string;
  uid: string;
  /** The `app.kubernetes.io/component` label (gateway, worker), else the container name. */
  component: string;
  /** Pid of the running process; undefined between a crash and its restart. */
  pid?: number;
  /** Local ports standing in for the container's 8080 (metrics, probes) and public port. */
  httpPort: number;
  publicHttpPort: number;
  /** Crashes restarted so far. */
  restarts: number;
  /** What the readiness probe said last. */
  ready: boolean;
  logFile: string;
  /** The resolved environment of the current process (secrets included: for tests only). */
  env: Record<string, string>;
}

export interface PodRunner {
  pods(): RunPod[];
  /** Resolves with the pods once `predicate` holds; rejects after `timeoutMs` (default 60 s). */
  waitFor(what: string, predicate: (pods: RunPod[]) => boolean, timeoutMs?: number): Promise<RunPod[]>;
  /** Stops watching and stops every process (SIGTERM, then SIGKILL after the grace period). */
  stop(): Promise<void>;
}

// ---- environment resolution (pure apart from the lookups) ----

export interface EnvLookups {
  secret(name: string, key: string): Promise<string | undefined>;
  configMap(name: string, key: string): Promise<string | undefined>;
}

export class PodEnvError extends Error {}

/** The value of a downward-API fieldRef, as the kubelet computes it. */
export function fieldRefValue(pod: V1Pod, fieldPath: string): string {
  const meta = pod.metadata ?? {};
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['([^']+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation) {
    const map = labelOrAnnotation[1] === 'labels' ? meta.labels : meta.annotations;
    return map?.[labelOrAnnotation[2]!] ?? '';
  }
  const simple: Record<string, string | undefined> = {
    'metadata.name': meta.name,
    'metadata.namespace': meta.namespace,
    'metadata.uid': meta.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': pod.status?.podIP,
    'status.hostIP': pod.status?.hostIP,
    'status.podIPs': pod.status?.podIPs?.map((p) => p.ip).join(','),
    'status.hostIPs': pod.status?.hostIPs?.map((p) => p.ip).join(','),
  };
  if (!(fieldPath in simple))
    throw new PodEnvError(`fieldRef.fieldPath "${fieldPath}" is not supported by the pod runner`);
  return simple[fieldPath] ?? '';
}

/** Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, others stay. */
export function expandVars(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (m, name: string | undefined) =>
    m === '$$' ? '$' : name !== undefined && name in defined ? defined[name]! : m,
  );
}

/** The container's environment from its pod spec, in order (later entries win, as in a pod). */
export async function resolveContainerEnv(
  pod: V1Pod,
  container: V1Container,
  lookups: EnvLookups,
): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const where = `pod ${pod.metadata?.namespace}/${pod.metadata?.name} container ${container.name}`;
  // The operator renders no envFrom; refusing it is clearer than running with a partial env.
  if (container.envFrom?.length)
    throw new PodEnvError(`${where}: envFrom is not supported by the pod runner`);
  for (const v of container.env ?? []) out[v.name] = await resolveEnvVar(pod, v, out, lookups, where);
  return out;
}

async function resolveEnvVar(
  pod: V1Pod,
  v: V1EnvVar,
  defined: Record<string, string>,
  lookups: EnvLookups,
  where: string,
): Promise<string> {
  if (!v.valueFrom) return expandVars(v.value ?? '', defined);
  const { secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef } = v.valueFrom;
  if (secretKeyRef || configMapKeyRef) {
    const ref = (secretKeyRef ?? configMapKeyRef)!;
    const kind = secretKeyRef ? 'Secret' : 'ConfigMap';
    const value = secretKeyRef
      ? await lookups.secret(ref.name!, ref.key)
      : await lookups.configMap(ref.name!, ref.key);
    if (value !== undefined) return value;
    if (ref.optional) return '';
    throw new PodEnvError(`${where}: env ${v.name}: ${kind} ${ref.name} has no key ${ref.key}`);
  }
  if (fieldRef) return fieldRefValue(pod, fieldRef.fieldPath);
  if (resourceFieldRef)
    throw new PodEnvError(`${where}: env ${v.name}: resourceFieldRef is not supported by the pod runner`);
  return '';
}

function isReadyCondition(pod: V1Pod): boolean {
  return !!pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
}

function isRunning(pod: V1Pod): boolean {
  return pod.status?.phase === 'Running' && !pod.metadata?.deletionTimestamp;
}

// ---- the runner ----

interface PodState {
  info: RunPod;
  pod: V1Pod;
  proc?: ManagedProcess;
  /** True once we were told to stop this pod; no restarts after that. */
  stopping: boolean;
  backoffMs: number;
  restartTimer?: NodeJS.Timeout;
  probeTimer?: NodeJS.Timeout;
  stopped?: Promise<void>;
  /** Init containers that ran to success (they run once per pod, like a kubelet's). */
  initDone: Set<string>;
  initProc?: ManagedProcess;
}

const groups = new Set<number>();
// A runner that dies without stop() must not leave pod processes (and their children) behind.
process.once('exit', () => {
  for (const pgid of groups) killGroup(pgid, 'SIGKILL');
});

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

export async function startPodRunner(options: PodRunnerOptions): Promise<PodRunner> {
  const entrypoint = options.entrypoint ?? DEFAULT_ENTRYPOINT;
  if (!existsSync(entrypoint)) throw new Error(`pod runner: ${entrypoint} is missing (run 'make build')`);
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const log = createLogger('pod-runner', options.logLevel ?? 'warn', { namespace: options.namespace });
  const ns = options.namespace;
  const states = new Map<string, PodState>();
  const initialBackoff = options.restartBackoffMs ?? 1_000;
  const maxBackoff = options.maxRestartBackoffMs ?? 30_000;
  const useReadiness = options.readiness ?? true;
  let closed = false;
  const waiters = new Set<() => void>();
  const changed = () => {
    for (const w of waiters) w();
  };

  const lookups: EnvLookups = {
    async secret(name, key) {
      const s = await core.readNamespacedSecret({ name, namespace: ns }).catch(() => undefined);
      const raw = s?.data?.[key];
      return raw === undefined ? s?.stringData?.[key] : Buffer.from(raw, 'base64').toString('utf8');
    },
    async configMap(name, key) {
      const c = await core.readNamespacedConfigMap({ name, namespace: ns }).catch(() => undefined);
      return c?.data?.[key];
    },
  };

  const markNotReady = (pod: V1Pod) =>
    core
      .patchNamespacedPodStatus(
        {
          name: pod.metadata!.name!,
          namespace: ns,
          body: {
            status: {
              conditions: ['Ready', 'ContainersReady'].map((type) => ({
                type,
                status: 'False',
                lastTransitionTime: new Date().toISOString(),
              })),
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      .catch(() => undefined);

  const patchStatus = async (state: PodState, body: object) => {
    await core
      .patchNamespacedPodStatus(
        { name: state.info.name, namespace: ns, body },
        setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
      )
      .catch(() => undefined); // the pod may be gone already
  };

  const setReady = async (state: PodState, ready: boolean, force = false) => {
    if (state.info.ready === ready && !force) return;
    // The pod's condition first, so whoever waits for `ready` also finds the pod Ready.
    if (useReadiness && !state.stopping) await patchReady(state, ready);
    state.info.ready = ready;
    changed();
  };

  const patchReady = async (state: PodState, ready: boolean) => {
    const now = new Date().toISOString();
    const status = ready ? 'True' : 'False';
    await patchStatus(state, {
      status: {
        conditions: ['Ready', 'ContainersReady'].map((type) => ({ type, status, lastTransitionTime: now })),
        containerStatuses: (state.pod.spec?.containers ?? []).map((c) => ({
          name: c.name,
          ready,
          restartCount: state.info.restarts,
        })),
      },
    });
  };

  const probe = (state: PodState) => {
    const container = state.pod.spec!.containers[0]!;
    const httpGet = container.readinessProbe?.httpGet;
    if (!useReadiness || !httpGet) return void setReady(state, true);
    const periodMs = options.readinessPeriodMs ?? (container.readinessProbe?.periodSeconds ?? 10) * 1000;
    const tick = async () => {
      if (state.stopping || !state.proc || state.proc.exited()) return;
      const ok = await fetch(`http://127.0.0.1:${state.info.httpPort}${httpGet.path ?? '/'}`, {
        signal: AbortSignal.timeout((container.readinessProbe?.timeoutSeconds ?? 1) * 1000),
      })
        .then((r) => (r.body?.cancel(), r.status >= 200 && r.status < 400))
        .catch(() => false);
      if (state.stopping || !state.proc || state.proc.exited()) return;
      await setReady(state, ok);
      state.probeTimer = setTimeout(() => void tick(), periodMs);
    };
    state.probeTimer = setTimeout(() => void tick(), Math.min(periodMs, 500));
  };

  const launch = async (state: PodState) => {
    if (state.stopping || closed) return;
    const container = state.pod.spec!.containers[0]!;
    let env: Record<string, string>;
    try {
      env = await resolveContainerEnv(state.pod, container, lookups);
    } catch (err) {
      // Like CreateContainerConfigError: try again later (the Secret may appear).
      log.warn({ pod: state.info.name, err: (err as Error).message }, 'cannot build the environment');
      state.restartTimer = setTimeout(() => void launch(state), state.backoffMs);
      return;
    }
    // The pod may have gone (or the runner stopped) while the env was being resolved.
    if (state.stopping || closed) return;
    // Init containers first, each to success, in order; a failure is retried with back-off.
    for (const init of state.pod.spec!.initContainers ?? []) {
      if (state.initDone.has(init.name)) continue;
      let code: number | null;
      try {
        const initEnv = {
          ...options.env,
          ...(await resolveContainerEnv(state.pod, init, lookups)),
          PATH: process.env.PATH ?? '/usr/bin:/bin',
        };
        if (state.stopping || closed) return;
        const proc = startProcess(
          `${state.info.name}-${init.name}`,
          process.execPath,
          [entrypoint, ...(init.args ?? [])],
          state.info.logFile.replace(/\.log$/, `-${init.name}.log`),
          { env: initEnv, detached: true },
        );
        state.initProc = proc;
        code = await new Promise<number | null>((resolve) => proc.child.once('exit', (c) => resolve(c)));
        state.initProc = undefined;
      } catch (err) {
        log.warn(
          { pod: state.info.name, init: init.name, err: (err as Error).message },
          'init container failed to start',
        );
        code = -1;
      }
      if (state.stopping || closed) return;
      if (code !== 0) {
        log.warn({ pod: state.info.name, init: init.name, code }, 'init container failed; retrying');
        state.restartTimer = setTimeout(() => void launch(state), state.backoffMs);
        state.backoffMs = Math.min(state.backoffMs * 2, options.maxRestartBackoffMs ?? 30_000);
        return;
      }
      state.initDone.add(init.name);
    }
    const full = {
      ...options.env,
      ...env,
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      [PORT_ENV.http]: String(state.info.httpPort),
      [PORT_ENV.publicHttp]: String(state.info.publicHttpPort),
    };
    state.info.env = full;
    const proc = startProcess(
      state.info.name,
      process.execPath,
      [entrypoint, ...(container.args ?? [])],
      state.info.logFile,
      { env: full, detached: true }, // its own process group, like a container's PID namespace
    );
    state.proc = proc;
    state.info.pid = proc.child.pid;
    if (proc.child.pid) groups.add(proc.child.pid);
    const startedAt = Date.now();
    // Listen before the first await: a process that exits at once (a crash on start) would
    // otherwise exit while the Ready patch is in flight, and its restart would never come.
    proc.child.once('exit', (code, signal) => {
      const pgid = proc.child.pid;
      if (pgid) {
        killGroup(pgid, 'SIGKILL'); // the container is gone: so are its other processes
        groups.delete(pgid);
      }
      clearTimeout(state.probeTimer);
      state.info.pid = undefined;
      changed();
      if (state.stopping || closed) return;
      // A crash: restart with back-off, reset once a process has run for a minute.
      if (Date.now() - startedAt > 60_000) state.backoffMs = initialBackoff;
      state.info.restarts += 1;
      log.warn({ pod: state.info.name, code, signal, restartInMs: state.backoffMs }, 'container exited');
      void setReady(state, false);
      state.restartTimer = setTimeout(() => void launch(state), state.backoffMs);
      state.backoffMs = Math.min(maxBackoff, state.backoffMs * 2);
    });
    changed();
    if (useReadiness) await setReady(state, false, true); // kwok said Ready before we started
    if (!proc.exited()) probe(state);
  };

  const startPod = async (pod: V1Pod) => {
    const name = pod.metadata!.name!;
    const state: PodState = {
      pod,
      stopping: false,
      backoffMs: initialBackoff,
      initDone: new Set(),
      info: {
        name,
        uid: pod.metadata!.uid!,
        component: pod.metadata?.labels?.['app.kubernetes.io/component'] ?? pod.spec!.containers[0]!.name,
        httpPort: await freePort(),
        publicHttpPort: await freePort(),
        restarts: 0,
        ready: false,
        logFile: join(options.logDir, `${name}.log`),
        env: {},
      },
    };
    states.set(state.info.uid, state);
    await launch(state);
  };

  const stopPod = (state: PodState): Promise<void> => {
    if (state.stopped) return state.stopped;
    state.stopping = true;
    clearTimeout(state.restartTimer);
    clearTimeout(state.probeTimer);
    const initStopped = state.initProc?.stop(1_000);
    const proc = state.proc;
    const graceMs = (state.pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    state.stopped = (async () => {
      await initStopped;
      if (proc && !proc.exited()) {
        const pgid = proc.child.pid!;
        const exited = new Promise<void>((r) => proc.child.once('exit', () => r()));
        proc.child.kill('SIGTERM'); // to the entrypoint only, as a container runtime does
        const timer = setTimeout(() => killGroup(pgid, 'SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      states.delete(state.info.uid);
      changed();
    })();
    return state.stopped;
  };

  // Pod events are handled one after another, so a start and a stop of the same pod never race.
  let chain = Promise.resolve();
  const onChange = (kind: 'add' | 'update' | 'delete', pod: V1Pod) => {
    chain = chain.then(async () => {
      if (closed) return;
      const uid = pod.metadata?.uid ?? '';
      const state = states.get(uid);
      if (state) state.pod = pod;
      if (kind !== 'delete' && isRunning(pod)) {
        if (!state) {
          // kwok marked it Ready before anything runs: take that back first, before controllers
          // (a StatefulSet's readyReplicas, a reshard waiting on it) act on it. This narrows the
          // window; it cannot close it (see docs/demo.md).
          if (useReadiness && isReadyCondition(pod)) await markNotReady(pod);
          await startPod(pod);
        }
      } else if (state) {
        void stopPod(state);
      }
    });
  };

  const client = KubeClient.fromKubeConfig(options.kubeConfig);
  const informer = new ResilientInformer<V1Pod>(client, `/api/v1/namespaces/${ns}/pods`, onChange, log, {
    labelSelector: options.labelSelector,
  });
  await informer.start();

  const snapshot = () => [...states.values()].map((s) => ({ ...s.info }));
  return {
    pods: snapshot,
    waitFor(what, predicate, timeoutMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const pods = snapshot();
          if (!predicate(pods)) return;
          cleanup();
          resolve(pods);
        };
        const timer = setTimeout(() => {
          cleanup();
          const seen = snapshot()
            .map((p) => `${p.name} pid=${p.pid ?? '-'} ready=${p.ready} restarts=${p.restarts}`)
            .join('; ');
          reject(
            new Error(
              `pod runner: timed out after ${timeoutMs} ms waiting for ${what}; pods: ${seen || 'none'}`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    async stop() {
      await informer.stop();
      client.close();
      await chain;
      closed = true;
      await Promise.all([...states.values()].map((s) => stopPod(s)));
    },
  };
}
