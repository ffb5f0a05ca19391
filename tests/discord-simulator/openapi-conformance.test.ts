// The simulator against Discord's own OpenAPI description (./discord-api-spec/): every REST
// route it serves is called, and each response (status, the headers the spec declares, JSON
// body) and each request body the test sends is validated against the matching operation; the
// objects inside the gateway dispatches it sends are validated against the component schemas.
// Where Discord sends something other than its spec, the exception is in SPEC_EXCEPTIONS.
import {
  gateCommand,
  rolesCommand,
  statusCommand,
  verifyCommand,
} from '../../bot/token-gating/commands/commands.js';
import { DiscordSimulator, Intent, Op, messagePayload } from '../../discord-simulator/index.js';
import { matchPath } from '../../discord-simulator/rest/http.js';
import { routes } from '../../discord-simulator/rest/routes.js';
import { DiscordApiSpec, SPEC_EXCEPTIONS, type SpecOperation } from './discord-api-spec.js';
import { RawGatewayClient, type Payload } from './raw-gateway-client.js';

const spec = DiscordApiSpec.load();

/** `PUT /guilds/:guild_id/members/:user_id/roles/:role_id` etc.: each needs a 2xx the test validated. */
const servedRoutes = routes.map((r) => `${r.method} ${r.template}`);
const validatedRoutes = new Set<string>();

/**
 * The objects inside each dispatch the simulator sends that the spec describes: a path into
 * `d` (`[]` for every element, `{}` for every value of a map) and its component schema.
 * GUILD_DELETE carries an unavailable guild ({id, unavailable}), for which the spec has no schema.
 */
const GATEWAY_OBJECTS: Record<string, [path: string, schema: string][]> = {
  READY: [['user', 'UserResponse']],
  GUILD_CREATE: [
    ['', 'GuildResponse'],
    ['members[]', 'GuildMemberResponse'],
    ['channels[]', 'GuildChannelResponse'],
  ],
  GUILD_DELETE: [],
  GUILD_MEMBER_UPDATE: [['', 'GuildMemberResponse']],
  GUILD_MEMBERS_CHUNK: [['members[]', 'GuildMemberResponse']],
  MESSAGE_CREATE: [['', 'MessageResponse']],
  INTERACTION_CREATE: [
    ['member', 'GuildMemberResponse'],
    ['channel', 'GuildChannelResponse'],
    ['data.resolved', 'ResolvedObjectsResponse'],
    ['data.resolved.messages{}', 'MessageResponse'],
  ],
};

interface Call {
  method: string;
  path: string;
  body?: unknown;
  auth?: boolean;
  /** A request the test sends on purpose against the rules: the spec must refuse it too. */
  invalid?: boolean;
}

describe('the simulator conforms to Discord’s OpenAPI description', () => {
  let sim: DiscordSimulator;
  let guild: string;
  let member: string;
  let problems: string[];

  beforeAll(async () => {
    sim = await DiscordSimulator.start({
      seed: 20,
      guilds: 2,
      guildSize: { members: 5, roles: 2 },
      // Compiling the spec's schemas takes seconds on a loaded machine; the 3 s window is not
      // what this test is about (rest-and-control.test.ts tests it).
      interactionResponseWindowMs: 10 * 60_000,
    });
    guild = [...sim.world.guilds.keys()][0]!;
    member = String(BigInt(guild) + 1n);
  });
  afterAll(() => sim.stop());
  beforeEach(() => {
    problems = [];
  });

  /** Calls the simulator, validating the request body and the response against the spec. */
  async function call({ method, path, body, auth = true, invalid = false }: Call) {
    const [pathOnly] = path.split('?');
    const route = routes.find((r) => r.method === method && matchPath(r.template, pathOnly!));
    if (!route) throw new Error(`the simulator serves no ${method} ${path}`);
    const op = spec.operation(method, route.template);
    if (!op) throw new Error(`${method} ${route.template}: no operation in the spec`);
    checkRequest(op, body, invalid);
    const res = await fetch(`${sim.apiUrl}/v10${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(auth ? { authorization: `Bot ${sim.token}` } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const rawBody = await res.text();
    const parsed: unknown = rawBody ? JSON.parse(rawBody) : undefined;
    problems.push(
      ...spec.checkResponse(op, { status: res.status, headers: res.headers, body: parsed, rawBody }),
    );
    if (res.ok) validatedRoutes.add(`${method} ${route.template}`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- asserted on loosely below
    return { status: res.status, body: parsed as any };
  }

  function checkRequest(op: SpecOperation, body: unknown, invalid: boolean) {
    const found = spec.checkRequest(op, body);
    if (invalid && found.length === 0)
      problems.push(`${op.name}: the test sends ${JSON.stringify(body)} as invalid, but the spec accepts it`);
    if (!invalid) problems.push(...found);
  }

  test('the validator refuses what the spec refuses (so a pass means something)', () => {
    const role = sim.world.roles(sim.world.guild(guild)!)[1]!;
    expect(spec.checkObject('GuildRoleResponse', role, 'role')).toEqual([]);
    const { colors: _colors, ...withoutColors } = role;
    expect(spec.checkObject('GuildRoleResponse', withoutColors, 'role').join()).toContain('colors');
    expect(spec.checkObject('GuildRoleResponse', { ...role, id: 'abc' }, 'role').join()).toContain('/id');
  });

  test('each listed exception is still needed: the published spec refuses what Discord sends', () => {
    const published = DiscordApiSpec.load({ exceptions: false });
    for (const { schema, example } of SPEC_EXCEPTIONS) {
      expect([schema, published.checkObject(example.schema, example.value, schema)]).not.toEqual([
        schema,
        [],
      ]);
      expect([schema, spec.checkObject(example.schema, example.value, schema)]).toEqual([schema, []]);
    }
  });

  test('gateway discovery and the current user', async () => {
    expect((await call({ method: 'GET', path: '/gateway', auth: false })).status).toBe(200);
    expect((await call({ method: 'GET', path: '/gateway/bot' })).status).toBe(200);
    expect((await call({ method: 'GET', path: '/gateway/bot', auth: false })).status).toBe(401);
    const me = await call({ method: 'GET', path: '/users/@me' });
    expect(me.body).toMatchObject({
      id: sim.world.botUser.id,
      bot: true,
      mfa_enabled: false,
      locale: 'en-US',
    });
    expect(problems).toEqual([]);
  });

  test('application commands: slash and context-menu commands, global and per guild', async () => {
    const commands = [
      {
        name: 'verify',
        description: 'Link a wallet',
        type: 1,
        options: [{ type: 3, name: 'address', description: 'Wallet address', required: true }],
      },
      { name: 'Inspect member', type: 2 },
      { name: 'Quote message', type: 3 },
    ];
    const app = sim.applicationId;
    const global = await call({ method: 'PUT', path: `/applications/${app}/commands`, body: commands });
    expect(global.status).toBe(200);
    expect(global.body.map((c: { name: string; description: string }) => [c.name, c.description])).toEqual([
      ['verify', 'Link a wallet'],
      ['Inspect member', ''],
      ['Quote message', ''],
    ]);
    expect((await call({ method: 'GET', path: `/applications/${app}/commands` })).body).toHaveLength(3);
    // The guild commands are the token-gating module's own: what this project registers.
    const perGuild = await call({
      method: 'PUT',
      path: `/applications/${app}/guilds/${guild}/commands`,
      body: [verifyCommand, gateCommand, rolesCommand, statusCommand].map((c) => c.definition),
    });
    expect(perGuild.body[1]).toMatchObject({ guild_id: guild, type: 1, name: 'gate' });
    expect(perGuild.body[1].default_member_permissions).toEqual(expect.any(String));
    const bad = await call({
      method: 'PUT',
      path: `/applications/${app}/commands`,
      body: [{ name: 'x'.repeat(33), description: 'too long a name' }],
      invalid: true,
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 50035 } });
    expect(problems).toEqual([]);
  });

  test('interactions: deferred ephemeral reply, @original edit, follow-up, and the errors', async () => {
    const deferred = sim.injectInteraction({ guildId: guild, userId: member, command: 'status' });
    const cb = await call({
      method: 'POST',
      path: `/interactions/${deferred.id}/${deferred.token}/callback?with_response=true`,
      body: { type: 5, data: { flags: 64 } },
      auth: false,
    });
    expect(cb.body.interaction).toMatchObject({
      response_message_loading: true,
      response_message_ephemeral: true,
    });
    const edit = await call({
      method: 'PATCH',
      path: `/webhooks/${sim.applicationId}/${deferred.token}/messages/@original`,
      body: { content: 'done', embeds: [{ title: 'Status', description: 'All shards up', color: 0x2ecc71 }] },
      auth: false,
    });
    expect(edit.body.embeds).toEqual([expect.objectContaining({ type: 'rich', title: 'Status' })]);
    const followup = await call({
      method: 'POST',
      path: `/webhooks/${sim.applicationId}/${deferred.token}`,
      body: { content: 'and more', flags: 64 },
      auth: false,
    });
    expect(followup.body.flags & 64).toBe(64);
    const again = await call({
      method: 'POST',
      path: `/interactions/${deferred.id}/${deferred.token}/callback`,
      body: { type: 4, data: { content: 'twice' } },
      auth: false,
    });
    expect(again).toMatchObject({ status: 400, body: { code: 40060 } });

    const replied = sim.injectInteraction({ guildId: guild, userId: member, command: 'status' });
    const reply = await call({
      method: 'POST',
      path: `/interactions/${replied.id}/${replied.token}/callback?with_response=true`,
      body: { type: 4, data: { content: 'pong' } },
      auth: false,
    });
    expect(reply.body).toMatchObject({
      interaction: { response_message_loading: false, response_message_ephemeral: false },
      resource: { type: 4, message: { content: 'pong' } },
    });
    const plain = sim.injectInteraction({ guildId: guild, userId: member, command: 'status' });
    const noResponse = await call({
      method: 'POST',
      path: `/interactions/${plain.id}/${plain.token}/callback`,
      body: { type: 4, data: { content: 'pong' } },
      auth: false,
    });
    expect(noResponse.status).toBe(204);
    const unknown = await call({
      method: 'POST',
      path: `/interactions/1/nope/callback`,
      body: { type: 4, data: { content: 'x' } },
      auth: false,
    });
    expect(unknown).toMatchObject({ status: 404, body: { code: 10062 } });
    expect(problems).toEqual([]);
  });

  test('guild, roles, members and member roles', async () => {
    const plain = await call({ method: 'GET', path: `/guilds/${guild}` });
    expect(plain.body.approximate_member_count).toBeUndefined();
    const counted = await call({ method: 'GET', path: `/guilds/${guild}?with_counts=true` });
    expect(counted.body.approximate_member_count).toBe(6);
    expect((await call({ method: 'GET', path: '/guilds/1' })).status).toBe(404);
    const roles = await call({ method: 'GET', path: `/guilds/${guild}/roles` });
    expect(roles.body[1]).toMatchObject({ colors: { primary_color: roles.body[1].color } });
    expect((await call({ method: 'GET', path: `/guilds/${guild}/members/${member}` })).status).toBe(200);
    expect((await call({ method: 'GET', path: `/guilds/${guild}/members/42` })).status).toBe(404);
    const role = roles.body[1].id;
    const rolePath = `/guilds/${guild}/members/${member}/roles/${role}`;
    expect((await call({ method: 'PUT', path: rolePath })).status).toBe(204);
    expect((await call({ method: 'DELETE', path: rolePath })).status).toBe(204);
    expect((await call({ method: 'PUT', path: `/guilds/${guild}/members/${member}/roles/42` })).status).toBe(
      404,
    );
    expect(problems).toEqual([]);
  });

  test('channel messages, an empty one refused, and a 429', async () => {
    const channel = sim.world.firstChannelId(sim.world.guild(guild)!);
    const sent = await call({
      method: 'POST',
      path: `/channels/${channel}/messages`,
      body: { content: 'hello', embeds: [{ description: 'an embed' }] },
    });
    expect(sent.body.embeds[0].type).toBe('rich');
    const empty = await call({
      method: 'POST',
      path: `/channels/${channel}/messages`,
      body: { content: '' },
    });
    expect(empty).toMatchObject({ status: 400, body: { code: 50006 } });
    sim.rateLimits.force429('GET /guilds/:guild_id/roles', 1_000);
    const limited = await call({ method: 'GET', path: `/guilds/${guild}/roles` });
    expect(limited).toMatchObject({ status: 429, body: { global: false } });
    expect(problems).toEqual([]);
  });

  test('every route the simulator serves was called and validated', () => {
    expect(servedRoutes.filter((r) => !validatedRoutes.has(r))).toEqual([]);
  });

  test('the objects inside every dispatch the simulator sends', async () => {
    const client = await RawGatewayClient.connect(sim.gatewayUrl);
    try {
      client.identify(sim.token, [0, 1], Intent.Guilds | Intent.GuildMembers | Intent.GuildMessages);
      await client.dispatch('READY');
      await client.next(() => client.received.filter((p) => p.t === 'GUILD_CREATE').length === 2);
      const g = sim.world.guild(guild)!;
      const role = sim.world.roles(g)[1]!.id;
      sim.changeMemberRole(g, member, role, 'add');
      await client.dispatch('GUILD_MEMBER_UPDATE');
      client.send(Op.RequestGuildMembers, { guild_id: guild, query: '', limit: 0, nonce: 'all' });
      await client.dispatch('GUILD_MEMBERS_CHUNK');
      const channelId = sim.world.firstChannelId(g);
      sim.dispatch(
        'MESSAGE_CREATE',
        messagePayload({ id: '900', guildId: guild, channelId, content: 'hi' }),
        {
          guildId: guild,
        },
      );
      await client.dispatch('MESSAGE_CREATE');
      for (const [commandType, command] of [
        [1, 'status'],
        [2, 'Inspect member'],
        [3, 'Quote message'],
      ] as const)
        // The USER command targets a member (resolved.members and .users), the MESSAGE one a message.
        sim.injectInteraction({
          guildId: guild,
          userId: member,
          command,
          commandType,
          targetId: commandType === 2 ? member : '901',
        });
      await client.next(() => client.received.filter((p) => p.t === 'INTERACTION_CREATE').length === 3);
      const added = sim.addGuilds(1)[0]!;
      await client.next((p) => p.t === 'GUILD_CREATE' && (p.d as { id: string }).id === added.id);
      sim.removeGuild(added.id);
      await client.dispatch('GUILD_DELETE');

      const seen = new Set(client.received.filter((p) => p.op === 0).map((p) => p.t!));
      expect([...seen].filter((t) => !(t in GATEWAY_OBJECTS))).toEqual([]);
      expect(Object.keys(GATEWAY_OBJECTS).filter((t) => !seen.has(t))).toEqual([]);
      for (const p of client.received) problems.push(...checkDispatch(p));
      expect(problems).toEqual([]);
      // Every listed object was really there at least once (a missing path checks nothing).
      const absent = Object.entries(GATEWAY_OBJECTS).flatMap(([t, objects]) =>
        objects
          .filter(
            ([path]) => !client.received.some((p) => p.op === 0 && p.t === t && at(p.d, path).length > 0),
          )
          .map(([path]) => `${t} d.${path}`),
      );
      expect(absent).toEqual([]);
    } finally {
      client.close();
    }
  });
});

function checkDispatch(p: Payload): string[] {
  if (p.op !== 0) return [];
  return (GATEWAY_OBJECTS[p.t!] ?? []).flatMap(([path, schema]) =>
    at(p.d, path).flatMap(([where, value]) => spec.checkObject(schema, value, `${p.t} d${where}`)),
  );
}

/** The values at a path such as `members[]` or `data.resolved.messages{}`, with where they are. */
function at(value: unknown, path: string): [string, unknown][] {
  let found: [string, unknown][] = [['', value]];
  for (const part of path.split('.').filter(Boolean)) {
    const name = part.replace(/(\[\]|\{\})$/, '');
    found = found.flatMap(([where, v]) => {
      const next = (v as Record<string, unknown> | undefined)?.[name];
      if (next === undefined) return [];
      if (part.endsWith('[]'))
        return (next as unknown[]).map((e, i): [string, unknown] => [`${where}.${name}[${i}]`, e]);
      if (part.endsWith('{}'))
        return Object.entries(next as object).map(([k, e]): [string, unknown] => [
          `${where}.${name}.${k}`,
          e,
        ]);
      return [[`${where}.${name}`, next]];
    });
  }
  return found;
}
