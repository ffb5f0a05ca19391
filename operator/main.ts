// The operator process: configuration, metrics and health endpoints, leader election, and the
// DiscordBot controller, which runs only while this replica leads.
import { createLogger } from '../bot/observability/logger.js';
import { startHttpServer } from '../bot/observability/http-server.js';
import { ConfigError, SETTINGS, parseConfig, type OperatorConfig } from './config/config.js';
import { DiscordBotController } from './controller/discordbot-controller.js';
import { KubeClient } from './kube/api-client.js';
import { KubeconfigError } from './kube/kubeconfig.js';
import { LeaseElector } from './leader-election/lease-elector.js';
import { OperatorMetrics } from './metrics/operator-metrics.js';

export async function runOperator(argv: string[], env: NodeJS.ProcessEnv): Promise<void> {
  if (argv.includes('--help')) {
    console.log(
      'usage: shardwarden operator [--flag=value ...]\n\nEvery flag can also be set through its environment variable.\n',
    );
    for (const s of SETTINGS)
      console.log(
        `  --${s.flag.padEnd(27)} ${s.env.padEnd(38)} ${s.help}${s.defaultValue ? ` (default ${s.defaultValue})` : ''}`,
      );
    return;
  }
  let config: OperatorConfig;
  try {
    config = parseConfig(argv, env);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger('operator', config.logLevel, { identity: config.identity });
  // One client (one connection pool) for the controller and the leader election.
  let kc: KubeClient;
  try {
    kc = await KubeClient.fromDefault(env);
  } catch (err) {
    if (err instanceof KubeconfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const metrics = new OperatorMetrics();
  let controller: DiscordBotController | undefined;
  let ready = !config.leaderElect;

  const startController = async () => {
    controller = new DiscordBotController(kc, config, metrics, log);
    await controller.start();
    ready = true;
  };

  const elector = config.leaderElect
    ? new LeaseElector(
        kc,
        {
          name: config.leaseName,
          namespace: config.leaseNamespace,
          identity: config.identity,
          leaseDurationMs: config.leaseDurationMs,
          renewDeadlineMs: config.renewDeadlineMs,
          retryPeriodMs: config.retryPeriodMs,
        },
        log,
        (verb) => metrics.apiRequests.inc({ verb: `lease-${verb}` }),
      )
    : undefined;
  const http = await startHttpServer(
    config.httpHost,
    config.httpPort,
    metrics.registry,
    {
      healthy: () => true,
      ready: () => ready,
      describe: () => ({ leader: elector?.isLeader ?? true }),
    },
    log,
  );
  log.info(
    { port: http.port, watchNamespaces: config.watchNamespaces, discordApiUrl: config.discordApiUrl },
    'operator started',
  );

  let shuttingDown = false;
  const shutdown = async (code: number) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info('shutting down');
    await controller?.stop();
    await elector?.stop();
    metrics.leader.set(0);
    await http.close();
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));

  if (!elector) {
    // Without election this replica is the only one and leads (dashboards and the
    // ShardwardenNoOperatorLeader alert read this gauge).
    metrics.leader.set(1);
    await startController();
    return;
  }
  elector.on('new-leader', (identity) =>
    log.info({ leader: identity }, 'standing by; another replica leads'),
  );
  // A standby is ready: it serves probes and waits. Readiness only gates the leader's caches.
  ready = true;
  elector.on('started-leading', () => {
    metrics.leader.set(1);
    ready = false;
    void startController().catch((err: unknown) => {
      log.error({ err: (err as Error).message }, 'controller failed to start');
      void shutdown(1);
    });
  });
  elector.on('stopped-leading', () => {
    // Stop at once: another replica may already be reconciling. Exit so we start clean as a standby.
    metrics.leader.set(0);
    void shutdown(1);
  });
  elector.start();
}
