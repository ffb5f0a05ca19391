// Route templates and major parameters derived from request paths (pure).
import { routeInfo } from '../../bot/discord-rest/route-info.js';

describe('routeInfo', () => {
  const g = '1183725613465600000';
  const u = '1183725613465600001';
  test.each([
    ['PUT', `/guilds/${g}/members/${u}/roles/${u}`, '/guilds/:id/members/:id/roles/:id', g, false],
    ['post', `/channels/${g}/messages`, '/channels/:id/messages', g, false],
    ['GET', '/users/@me', '/users/@me', 'global', false],
    [
      'PUT',
      `/channels/${g}/messages/${u}/reactions/%F0%9F%91%8D/@me`,
      '/channels/:id/messages/:id/reactions/:reaction',
      g,
      false,
    ],
    ['GET', '/invites/abcDEF', '/invites/:code', 'global', false],
    ['POST', `/interactions/${u}/itoken.secret/callback`, '/interactions/:id/:token/callback', u, true],
    [
      'PATCH',
      `/webhooks/${g}/itoken.secret/messages/@original`,
      '/webhooks/:id/:token/messages/@original',
      expect.stringMatching(/^webhook-[0-9a-f]{16}$/),
      true,
    ],
  ])('%s %s', (method, path, template, major, exempt) => {
    const info = routeInfo(method, path, true);
    expect(info).toEqual({ method: method.toUpperCase(), template, major, globalExempt: exempt });
    expect(JSON.stringify(info)).not.toContain('secret');
  });

  test('requests without the bot token are outside the global limit', () => {
    expect(routeInfo('POST', '/webhooks/1/2', false).globalExempt).toBe(true);
    expect(routeInfo('GET', `/guilds/${g}`, false).globalExempt).toBe(true);
    expect(routeInfo('GET', `/guilds/${g}`, true).globalExempt).toBe(false);
  });
});
