// The worker entrypoint with a bot author's handler module (examples/custom-handlers), behind a
// real gateway process, against the simulator and a real Redis.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import { DiscordSimulator, messagePayload } from '../../discord-simulator/index.js';
import { batchBodyKey, QUEUES, queuePrefix } from '../../bot/queues/queue-names.js';
import { startRedis, waitUntil, type RedisServer } from '../../testenv/index.js';
import { ENTRYPOINT } from '../support/built-entrypoint.js';
import { BOT_REF, metricSum, type GatewayProcess } from '../gateway/harness.js';
import {
  EXAMPLE_MODULE,
  startOneShardGateway,
  startWorker,
  workerEnv,
  type WorkerProcess,
} from './harness.js';

const run = promisify(execFile);

describe('worker', () => {
  let sim: DiscordSimulator;
  let redis: RedisServer;
  let gateway: GatewayProcess;
  let worker: WorkerProcess;
  let guildId: string;

  beforeAll(async () => {
    sim = await DiscordSimulator.start({ seed: 7, guilds: 4, guildSize: { members: 5 } });
    redis = await startRedis();
    guildId = [...sim.world.guilds.keys()][0]!;
    gateway = await startOneShardGateway(sim, redis.url);
    worker = await startWorker(
      await workerEnv(sim, redis.url, { SHARDWARDEN_HANDLER_MODULES: EXAMPLE_MODULE }),
    );
  });

  afterAll(async () => {
    await worker?.proc.stop();
    await gateway?.proc.stop();
    await sim?.stop();
    await redis?.close();
  });

  const responses = (id: string) => sim.recorder.interactionResponses.filter((r) => r.interactionId === id);
  const content = (data: unknown) =>
    (data as { content?: string; flags?: number } | undefined)?.content ?? '';
  const flags = (data: unknown) => (data as { flags?: number } | undefined)?.flags ?? 0;

  async function command(command: string, options: unknown[] = [], permissions?: string, userId?: string) {
    const member = userId ?? String(BigInt(guildId) + 1n);
    const inj = sim.injectInteraction({
      guildId,
      userId: member,
      command,
      options,
      ...(permissions !== undefined ? { permissions } : {}),
    });
    const first = await inj.response;
    return { ...inj, first };
  }

  test('a fast command is answered directly inside the window', async () => {
    const { first } = await command('ping');
    expect(first.kind).toBe('callback');
    expect(first.type).toBe(4);
    expect(content(first.data)).toBe('pong');
    expect(first.latencyMs).toBeLessThan(3000);
  });

  test('a command declared slow is deferred at once and then edited with its result', async () => {
    const { id, first } = await command('slow', [{ name: 'ms', type: 4, value: 1500 }]);
    expect(first.type).toBe(5);
    // Inside Discord's 3 s window is the claim; how fast is bench-interactions' figure.
    expect(first.latencyMs).toBeLessThan(3000);
    await waitUntil('the edit', async () => responses(id).some((r) => r.kind === 'edit-original'), {
      timeoutMs: 30_000,
    });
    expect(content(responses(id).find((r) => r.kind === 'edit-original')!.data)).toBe('done');
  });

  test('a fast command that runs late is deferred before the window closes; no late answer', async () => {
    const { id, first } = await command('sneaky-slow', [{ name: 'ms', type: 4, value: 3500 }]);
    expect(first.type).toBe(5);
    expect(first.latencyMs).toBeLessThan(3000);
    await waitUntil('the edit', async () => responses(id).some((r) => r.kind === 'edit-original'), {
      timeoutMs: 30_000,
    });
    expect(content(responses(id).find((r) => r.kind === 'edit-original')!.data)).toBe('finally');
    expect(sim.recorder.violations.filter((v) => v.kind === 'interaction-late')).toEqual([]);
  });

  test('cooldowns hold per member (in Redis), admin-only commands check permissions', async () => {
    const user = String(BigInt(guildId) + 2n);
    expect(content((await command('limited', [], undefined, user)).first.data)).toBe('ok');
    const second = await command('limited', [], undefined, user);
    expect(content(second.first.data)).toMatch(/Slow down: `\/limited` can be used again in \d+ s/);
    expect(flags(second.first.data) & 64).toBe(64);
    expect(content((await command('limited', [], undefined, String(BigInt(guildId) + 3n))).first.data)).toBe(
      'ok',
    );

    expect(content((await command('admin-only', [], '0')).first.data)).toMatch(/is for admins/);
    expect(content((await command('admin-only', [], '8')).first.data)).toBe('hello admin');
  });

  test('errors are answered: user-facing text, a generic message for bugs, a hint for unknown commands', async () => {
    const refused = await command('refuse');
    expect(content(refused.first.data)).toBe('Not today.');
    const crashed = await command('crash');
    expect(content(crashed.first.data)).toContain('Something went wrong while running `/crash`');
    expect(content(crashed.first.data)).toContain(crashed.id);
    const unknown = await command('no-such-command');
    expect(content(unknown.first.data)).toContain('register-commands');
    // The counter moves just after the reply went out.
    let metrics = '';
    await waitUntil('the three jobs to be counted', async () => {
      metrics = await worker.metrics();
      return metricSum(metrics, 'shardwarden_worker_jobs_total', 'type="unknown_command"') === 1;
    });
    expect(metricSum(metrics, 'shardwarden_worker_jobs_total', 'type="crash",outcome="failed"')).toBe(1);
    expect(metricSum(metrics, 'shardwarden_worker_jobs_total', 'type="refuse",outcome="completed"')).toBe(1);
    expect(metricSum(metrics, 'shardwarden_worker_jobs_total', 'type="unknown_command"')).toBe(1);
  });

  test('events reach their handler; a transient failure is retried with back-off; a permanent one is kept as failed', async () => {
    const channelId = sim.world.firstChannelId(sim.world.guild(guildId)!);
    const seenKey = `${queuePrefix(BOT_REF)}:example:seen`;
    const client = new (await import('ioredis')).Redis(redis.url);
    try {
      for (const [i, text] of ['hello', 'fail-once'].entries())
        sim.dispatch(
          'MESSAGE_CREATE',
          messagePayload({ id: String(900 + i), guildId, channelId, content: text }),
          {
            guildId,
          },
        );
      await waitUntil('both messages handled', async () => (await client.scard(seenKey)) === 2, {
        timeoutMs: 20_000,
      });
      // Counted per dispatch once its batch ends, which is after the handlers' effects: waited
      // for, not read at once. The batch (or batches) they came in was retried for the failed one.
      const dispatches = async (outcome: string) =>
        metricSum(
          await worker.metrics(),
          'shardwarden_worker_dispatches_total',
          `type="MESSAGE_CREATE",outcome="${outcome}"`,
        );
      await waitUntil('both counted as completed', async () => (await dispatches('completed')) === 2, {
        timeoutMs: 20_000,
      });
      expect(await dispatches('failed')).toBe(1);

      // A job of a gateway before batching (one dispatch, keyed by its id) is still processed.
      // Attempts come from the producer; a short back-off keeps the test quick.
      const events = new Queue(QUEUES.singleEvents, {
        connection: { url: redis.url },
        prefix: queuePrefix(BOT_REF),
      });
      await events.add(
        'MESSAGE_CREATE',
        {
          t: 'MESSAGE_CREATE',
          d: { id: '999', content: 'always-fail' },
          shardId: 0,
          seq: 1,
          receivedAt: Date.now(),
          generation: 1,
        },
        { attempts: 3, backoff: { type: 'fixed', delay: 50 }, jobId: 'always-fail' },
      );
      await waitUntil(
        'the job to be kept as failed',
        async () => (await events.getJobState('always-fail')) === 'failed',
        {
          timeoutMs: 20_000,
        },
      );
      const job = await events.getJob('always-fail');
      expect(job?.attemptsMade).toBe(3);
      expect(job?.failedReason).toBe('permanent failure');
      await events.close();

      // A batch whose dispatch always fails: on its last attempt the dispatch held behind it in
      // its guild runs anyway, and the failed set keeps only the failing dispatch.
      const batches = new Queue(QUEUES.events, {
        connection: { url: redis.url },
        prefix: queuePrefix(BOT_REF),
      });
      const inGuild = (id: string, content: string) => ({
        t: 'MESSAGE_CREATE',
        d: { id, content, guild_id: guildId },
        shardId: 0,
        seq: 1,
        receivedAt: Date.now(),
        generation: 1,
        key: `MESSAGE_CREATE-${id}`,
      });
      await batches.add(
        'batch',
        { dispatches: [inGuild('981', 'fine'), inGuild('982', 'always-fail'), inGuild('983', 'held')] },
        { attempts: 2, backoff: { type: 'fixed', delay: 50 }, jobId: 'poison-batch' },
      );
      await waitUntil(
        'the batch kept as failed',
        async () => (await batches.getJobState('poison-batch')) === 'failed',
        {
          timeoutMs: 20_000,
        },
      );
      const failed = await batches.getJob('poison-batch');
      expect((failed?.data as { dispatches: { key: string }[] }).dispatches.map((d) => d.key)).toEqual([
        'MESSAGE_CREATE-982',
      ]);
      expect(await client.sismember(seenKey, '981')).toBe(1);
      expect(await client.sismember(seenKey, '983')).toBe(1);

      // The same with the dispatches as a batch body beside the job (what gateways write once
      // every consumer reads bodies): run from the body, which goes once the job completes; a
      // failed batch takes what is left inline and its body goes; a job whose body is gone fails
      // naming it.
      const withBodyJob = async (jobId: string, dispatches: ReturnType<typeof inGuild>[]) => {
        const body = batchBodyKey(queuePrefix(BOT_REF), jobId);
        await client.set(body, JSON.stringify(dispatches), 'EX', 600);
        await batches.add(
          'batch',
          { body, size: dispatches.length, receivedAt: Date.now() },
          { attempts: 2, backoff: { type: 'fixed', delay: 50 }, jobId, removeOnComplete: true },
        );
        return body;
      };
      const fineBody = await withBodyJob('body-batch', [inGuild('991', 'fine'), inGuild('992', 'fine')]);
      const poisonBody = await withBodyJob('body-poison', [
        inGuild('993', 'always-fail'),
        inGuild('994', 'held'),
      ]);
      const goneBody = batchBodyKey(queuePrefix(BOT_REF), 'never-written');
      await batches.add(
        'batch',
        { body: goneBody, size: 1, receivedAt: Date.now() },
        { attempts: 1, jobId: 'body-gone' },
      );
      await waitUntil(
        'the body batches settled',
        async () =>
          (await client.exists(fineBody)) === 0 &&
          (await batches.getJobState('body-poison')) === 'failed' &&
          (await batches.getJobState('body-gone')) === 'failed',
        { timeoutMs: 20_000 },
      );
      for (const id of ['991', '992', '994']) expect(await client.sismember(seenKey, id)).toBe(1);
      expect(await client.exists(poisonBody)).toBe(0);
      const poison = await batches.getJob('body-poison');
      expect(poison?.data).toEqual({ dispatches: [expect.objectContaining({ key: 'MESSAGE_CREATE-993' })] });
      expect((await batches.getJob('body-gone'))?.failedReason).toContain(
        `its batch body ${goneBody} is gone`,
      );
      await batches.close();
    } finally {
      client.disconnect();
    }
  });

  test('register-commands installs every command of the configured modules', async () => {
    const { stdout } = await run(process.execPath, [ENTRYPOINT, 'register-commands'], {
      env: {
        ...process.env,
        DISCORD_TOKEN: sim.token,
        DISCORD_API_URL: sim.apiUrl,
        SHARDWARDEN_HANDLER_MODULES: `shardwarden:token-gating,${EXAMPLE_MODULE}`,
        SHARDWARDEN_COMMANDS_GUILD_ID: guildId,
      },
    });
    const names = (JSON.parse(stdout.trim()) as { commands: string[] }).commands.sort();
    expect(names).toEqual(
      [
        'admin-only',
        'crash',
        'gate',
        'limited',
        'ping',
        'refuse',
        'roles',
        'slow',
        'sneaky-slow',
        'status',
        'verify',
      ].sort(),
    );
    expect(
      sim
        .commands(sim.applicationId, guildId)
        .map((c) => c.name as string)
        .sort(),
    ).toEqual(names);

    const bad = await run(process.execPath, [ENTRYPOINT, 'register-commands'], {
      env: {
        ...process.env,
        DISCORD_TOKEN: sim.token,
        DISCORD_API_URL: sim.apiUrl,
        SHARDWARDEN_HANDLER_MODULES: 'shardwarden:nope',
      },
    }).catch((err: { code: number; stderr: string }) => err);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toContain('unknown built-in module "shardwarden:nope"');
  });

  test('bad settings stop the worker at start with one line naming the variable', async () => {
    const bad = await run(process.execPath, [ENTRYPOINT, 'worker'], {
      env: { ...process.env, ...(await workerEnv(sim, redis.url)), SHARDWARDEN_WORKER_CONCURRENCY: 'lots' },
    }).catch((err: { code: number; stderr: string }) => err);
    expect((bad as { code: number }).code).toBe(2);
    expect((bad as { stderr: string }).stderr.trim()).toBe(
      'worker: SHARDWARDEN_WORKER_CONCURRENCY="lots" must be an integer >= 1 and <= 10000',
    );
    const noRedis = await run(process.execPath, [ENTRYPOINT, 'worker'], {
      env: { ...process.env, ...(await workerEnv(sim, redis.url)), REDIS_URL: 'http://user:secret@x' },
    }).catch((err: { code: number; stderr: string }) => err);
    expect((noRedis as { stderr: string }).stderr).toContain('REDIS_URL must be a redis:// or rediss:// URL');
    expect((noRedis as { stderr: string }).stderr).not.toContain('secret');
  });

  test('SIGTERM lets the in-flight job finish, then the process exits cleanly', async () => {
    const inj = sim.injectInteraction({
      guildId,
      userId: String(BigInt(guildId) + 4n),
      command: 'slow',
      options: [{ name: 'ms', type: 4, value: 1500 }],
    });
    expect((await inj.response).type).toBe(5);
    const exit = new Promise<number | null>((resolve) =>
      worker.proc.child.once('exit', (code) => resolve(code)),
    );
    worker.proc.child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(content(responses(inj.id).find((r) => r.kind === 'edit-original')?.data)).toBe('done');
  });
});
