#!/usr/bin/env node
// `make demo`: the whole system on this machine, narrated. Ctrl-C stops everything.
import { randomBytes } from 'node:crypto';
import { DEMO_BOT, DEMO_NAMESPACE } from './manifest.js';
import { DemoOptionsError, parseDemoOptions, usage, type DemoOptions } from './options.js';
import { writeDemoPage } from './report.js';
import { runScenario, type DemoResult } from './scenario.js';
import { startDemoStack, type DemoStack } from './stack.js';
import { INTERRUPTED_EXIT_CODE, interruptedChild, runScope, type RunScope } from '../testenv/index.js';

// The same clock as performance.timeOrigin, which the scenario uses to place events in time.
const started = performance.timeOrigin;
const say = (line: string) =>
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}`);

/** The verdict: what a newcomer (and the demo test) reads first. */
export function summaryLine(r: DemoResult): string {
  const ok = r.lost === 0 && r.duplicated === 0 && r.sent > 0;
  return `${ok ? 'DEMO OK' : 'DEMO FAILED'}: ${r.sent} events sent, ${r.processed} processed, ${r.lost} lost, ${r.duplicated} duplicated; ${r.interactions.answered} interactions answered (p50 ${r.interactions.p50Ms} ms); workers peaked at ${r.maxWorkers}; reshard ${r.reshard}; dispatches Discord had no session for: ${r.undelivered}`;
}

async function main(scope: RunScope): Promise<number> {
  let options: DemoOptions | 'help';
  try {
    options = parseDemoOptions(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof DemoOptionsError) {
      console.error(`demo: ${err.message}`);
      return 2;
    }
    throw err;
  }
  if (options === 'help') {
    console.log(usage());
    return 0;
  }
  let stack: DemoStack | undefined;
  try {
    say(
      `Shardwarden demo: ${options.guilds} guilds, ${options.eventRate} events/s, burst ${options.burst}, options: node dist/demo/main.js --help`,
    );
    const runId = process.env.SHARDWARDEN_DEMO_RUN ?? randomBytes(6).toString('hex');
    stack = await startDemoStack(options, say, runId, scope);
    const real = stack.node === 'real';
    scope.defer(() =>
      say(
        `stopping: ${real ? 'operator, simulator, anvil, Postgres, Redis, the real node and its containers, Prometheus' : 'pod processes, operator, simulator, Prometheus, anvil, Postgres, Redis'}, control plane`,
      ),
    );
    say(
      real
        ? `logs: ${stack.logDir} (operator.log; the pods' logs: kubectl --kubeconfig ${stack.cp.kubeconfigPath} logs -n ${DEMO_NAMESPACE} <pod>; removed at exit unless SHARDWARDEN_KEEP_TMP=1)`
        : `logs: ${stack.logDir} (operator.log, one <pod>.log per pod; removed at exit unless SHARDWARDEN_KEEP_TMP=1)`,
    );
    const result = await runScenario(stack, options, say, scope.signal);
    // Beside the log folder, and kept when the folder is removed at exit.
    const page = `${stack.logDir}.html`;
    // The plots are extra: a failed Prometheus query must not turn a good run into a failed one.
    const plotted = await writeDemoPage(
      stack.prometheus,
      { namespace: DEMO_NAMESPACE, name: DEMO_BOT },
      result.window.start,
      result.window.end,
      page,
    ).then(
      () => undefined,
      (err: unknown) => (err as Error).message,
    );
    say(summaryLine(result));
    if (stack.nodeWarning) say(stack.nodeWarning);
    say(
      plotted === undefined
        ? `plots (backlog and workers, shards READY through the reshard): ${page}`
        : `plots not written: ${plotted}`,
    );
    return result.lost === 0 && result.duplicated === 0 && result.sent > 0 ? 0 : 1;
  } catch (err) {
    if (scope.signal.aborted || interruptedChild(err)) return INTERRUPTED_EXIT_CODE;
    say(`DEMO FAILED: ${(err as Error).message}`);
    if (stack) say(`logs were in ${stack.logDir}`);
    return 1;
  }
}

// Ctrl-C stops everything the stack started, in reverse order, and exits 130.
const scope = runScope({
  onInterrupt: () => say('interrupted: stopping everything ...'),
  onError: (err) => say(`DEMO FAILED: ${(err as Error)?.message ?? String(err)}`),
  // Said only when true: a teardown that failed (the real node's sweep) is named instead.
  onStopped: (errors) => {
    if (errors.length === 0) say('stopped; nothing is left running');
    for (const err of errors) say(`WARNING: not everything stopped cleanly: ${err.message}`);
  },
});
const code = await main(scope);
const stopErrors = await scope.stop();
process.exit(code === 0 && stopErrors.length > 0 ? 1 : code);
