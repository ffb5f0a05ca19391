// What an ordinary discord.js bot reads, against the simulator: role colours and icons, member
// display colour and name, user flags, guild features, member fetches over the gateway (op 8),
// and a context-menu command from registration to reply.
import {
  ApplicationCommandType,
  Client,
  Events,
  GatewayIntentBits,
  UserFlags,
  type Guild as DjsGuild,
  type Interaction,
} from 'discord.js';
import { DiscordSimulator } from '../../discord-simulator/index.js';
import { DiscordApiSpec } from './discord-api-spec.js';

describe('discord.js reads what Discord sends', () => {
  let sim: DiscordSimulator;
  let client: Client;
  let guildId: string;
  let gold: string;
  let badged: string;

  beforeAll(async () => {
    sim = await DiscordSimulator.start({
      seed: 21,
      guilds: 1,
      guildSize: { members: 2_500, roles: 2 },
      // A loaded machine must not turn the bot's reply into a late one; the window is tested elsewhere.
      interactionResponseWindowMs: 10 * 60_000,
    });
    const guild = [...sim.world.guilds.values()][0]!;
    guildId = guild.id;
    guild.features.push('ROLE_ICONS', 'ENHANCED_ROLE_COLORS');
    gold = sim.world.addRole(guild, 'Gold', {
      colors: { primary_color: 0xf1c40f, secondary_color: 0xe67e22, tertiary_color: null },
      icon: '0123456789abcdef0123456789abcdef',
      unicode_emoji: '🥇',
    }).id;
    badged = '4242424242424242';
    // HypeSquad Bravery and Active Developer badges.
    sim.world.addMember(guild, {
      id: badged,
      username: 'badged',
      global_name: 'Badged Person',
      public_flags: UserFlags.HypeSquadOnlineHouse1 | UserFlags.ActiveDeveloper,
    });
    guild.memberRoles.set(badged, [gold]);
    client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMembers],
      rest: { api: sim.apiUrl },
    });
    const ready = new Promise((resolve) => client.once(Events.ClientReady, resolve));
    await client.login(sim.token);
    await ready;
  });
  afterAll(async () => {
    await client.destroy();
    await sim.stop();
  });

  const guild = (): DjsGuild => client.guilds.cache.get(guildId)!;

  test('role colours and icons, guild features', () => {
    const role = guild().roles.cache.get(gold)!;
    expect(role.hexColor).toBe('#f1c40f');
    expect(role.colors).toEqual({ primaryColor: 0xf1c40f, secondaryColor: 0xe67e22, tertiaryColor: null });
    expect(role.unicodeEmoji).toBe('🥇');
    expect(role.iconURL()).toContain(`/role-icons/${gold}/0123456789abcdef0123456789abcdef`);
    const generated = guild().roles.cache.find((r) => r.name === 'Role 1')!;
    expect(generated.hexColor).toMatch(/^#[0-9a-f]{6}$/);
    expect(guild().features).toEqual(['ROLE_ICONS', 'ENHANCED_ROLE_COLORS']);
  });

  test('member display colour and name, user flags', async () => {
    const member = await guild().members.fetch(badged);
    expect(member.displayColor).toBe(0xf1c40f);
    expect(member.displayHexColor).toBe('#f1c40f');
    expect(member.displayName).toBe('Badged Person');
    expect(member.user.flags?.toArray()).toEqual(['HypeSquadOnlineHouse1', 'ActiveDeveloper']);
    const plain = await guild().members.fetch(String(BigInt(guildId) + 3n));
    expect(plain.displayName).toBe('Member 3');
    expect(plain.displayColor).toBe(0);
  });

  test('guild.members.fetch() gets every member through GUILD_MEMBERS_CHUNK', async () => {
    const members = await guild().members.fetch();
    expect(members.size).toBe(2_502); // 2,500 generated, the badged one and the bot
    expect(guild().members.cache.size).toBe(2_502);
  });

  test('guild.members.fetch({ query }) searches by username prefix', async () => {
    // member24, member240-249 and member2400-2499 match; the limit keeps 20 of them.
    const found = await guild().members.fetch({ query: 'member24', limit: 20 });
    expect(found.size).toBe(20);
    expect(found.every((m) => m.user.username.startsWith('member24'))).toBe(true);
    expect((await guild().members.fetch({ query: 'badg' })).map((m) => m.id)).toEqual([badged]);
  });

  test('a USER context-menu command: registered with its display name, answered with the target member', async () => {
    const commands = await client.application!.commands.set([
      { name: 'Inspect member', type: ApplicationCommandType.User },
    ]);
    expect(commands.map((c) => [c.name, c.type, c.description])).toEqual([
      ['Inspect member', ApplicationCommandType.User, ''],
    ]);
    client.on(Events.InteractionCreate, (interaction: Interaction) => {
      if (!interaction.isUserContextMenuCommand()) return;
      const target = interaction.targetMember;
      const name = target && 'displayName' in target ? target.displayName : interaction.targetUser.username;
      void interaction.reply({
        content: `${interaction.commandName}: ${name} ${interaction.targetUser.flags?.bitfield}`,
        flags: 'Ephemeral',
      });
    });
    const injected = sim.injectInteraction({
      guildId,
      userId: String(BigInt(guildId) + 1n),
      command: 'Inspect member',
      commandType: ApplicationCommandType.User,
      targetId: badged,
    });
    const response = await injected.response;
    expect(response).toMatchObject({
      kind: 'callback',
      type: 4,
      data: {
        content: `Inspect member: Badged Person ${UserFlags.HypeSquadOnlineHouse1 | UserFlags.ActiveDeveloper}`,
        flags: 64,
      },
    });
  });

  test('every request body discord.js sent is valid by Discord’s OpenAPI description', () => {
    const spec = DiscordApiSpec.load();
    const calls = sim.recorder.restCalls.filter((c) => c.body !== undefined);
    expect(calls.map((c) => c.route)).toContain('PUT /applications/:application_id/commands');
    const problems = calls.flatMap((c) => {
      const [method, template] = c.route.split(' ') as [string, string];
      const op = spec.operation(method, template);
      return op ? spec.checkRequest(op, c.body) : [`${c.route}: no operation in the spec`];
    });
    expect(problems).toEqual([]);
  });
});
