// The chain test environment's own failure modes.
import { startAnvil } from '../../testenv/index.js';

test('a missing anvil binary is an error naming the setting', async () => {
  const saved = process.env.SHARDWARDEN_ANVIL;
  process.env.SHARDWARDEN_ANVIL = '/nonexistent/anvil';
  try {
    await expect(startAnvil()).rejects.toThrow('SHARDWARDEN_ANVIL points at /nonexistent/anvil');
  } finally {
    if (saved === undefined) delete process.env.SHARDWARDEN_ANVIL;
    else process.env.SHARDWARDEN_ANVIL = saved;
  }
});
