import { parseConfig } from '../../operator/config/config.js';
import { parseDuration } from '../../operator/config/duration.js';

describe('operator configuration', () => {
  test('defaults', () => {
    const c = parseConfig([], { POD_NAME: 'op-0', POD_NAMESPACE: 'shardwarden-system' });
    expect(c).toMatchObject({
      watchNamespaces: [],
      discordApiUrl: 'https://discord.com/api',
      leaderElect: true,
      leaseName: 'shardwarden-operator',
      leaseNamespace: 'shardwarden-system',
      identity: 'op-0',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      httpPort: 8080,
      resyncPeriodMs: 600_000,
    });
  });

  test('flags win over environment variables', () => {
    const c = parseConfig(['--watch-namespaces=a,b', '--log-level=debug'], {
      SHARDWARDEN_WATCH_NAMESPACES: 'c',
      SHARDWARDEN_DISCORD_API_URL: 'http://127.0.0.1:9/api/',
    });
    expect(c.watchNamespaces).toEqual(['a', 'b']);
    expect(c.logLevel).toBe('debug');
    expect(c.discordApiUrl).toBe('http://127.0.0.1:9/api');
  });

  test('unknown flags are refused with the list of known ones', () => {
    expect(() => parseConfig(['--nope=1'], {})).toThrow(
      'unknown argument --nope (known: --watch-namespaces, ',
    );
  });

  test('every problem is reported at once, naming the flag and its variable', () => {
    let message = '';
    try {
      parseConfig(
        [
          '--lease-duration=5s',
          '--renew-deadline=10s',
          '--http-port=70000',
          '--watch-namespaces=Bad_NS',
          '--discord-api-url=ftp://x',
        ],
        { SHARDWARDEN_RESYNC_PERIOD: 'often' },
      );
    } catch (err) {
      message = (err as Error).message;
    }
    expect(
      message
        .split('\n')
        .slice(1)
        .map((l) => l.trim()),
    ).toEqual([
      '--watch-namespaces (SHARDWARDEN_WATCH_NAMESPACES): "Bad_NS" is not a valid namespace name',
      '--discord-api-url (SHARDWARDEN_DISCORD_API_URL): "ftp://x" is not an http(s) URL',
      '--http-port (SHARDWARDEN_HTTP_PORT): "70000" must be an integer from 0 to 65535',
      '--resync-period (SHARDWARDEN_RESYNC_PERIOD): "often" is not a duration (examples: 500ms, 15s, 1h30m)',
      '--renew-deadline (SHARDWARDEN_RENEW_DEADLINE) must be shorter than --lease-duration (SHARDWARDEN_LEASE_DURATION)',
    ]);
  });

  test('durations', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1_500);
    expect(() => parseDuration('10')).toThrow('"10" is not a duration');
    expect(() => parseDuration('')).toThrow();
  });
});
