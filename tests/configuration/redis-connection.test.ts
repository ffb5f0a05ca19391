// What loading the Redis client does to the process: ioredis 6's `class VerbatimString extends
// String` leaves V8's String.prototype in dictionary mode (every string method call then goes
// through a generic lookup), and the module that makes every Redis client turns it fast again.
// Checked in a fresh node with V8's own test of the object (natives syntax), on the built module
// as the processes load it (npx tsc -p tsconfig.build.json, which `make test` runs first).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

const fastStringPrototype = (imports: string) => {
  const script = `${imports}; console.log(JSON.stringify(%HasFastProperties(String.prototype)));`;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', script],
    {
      cwd: root,
      timeout: 60_000,
    },
  );
  return JSON.parse(out.toString()) as boolean;
};

// Should this fail after an upgrade of ioredis or Node, the cause is gone: the fix can go too.
test('ioredis alone leaves String.prototype slow (why the module below does anything)', () => {
  expect(fastStringPrototype("await import('ioredis')")).toBe(false);
});

test('after the Redis connection module (and BullMQ) is loaded, String.prototype is fast again', () => {
  const built = fileURLToPath(new URL('../../dist/bot/configuration/redis-connection.js', import.meta.url));
  if (!existsSync(built)) throw new Error(`${built} is missing: run 'make build' first`);
  const module = pathToFileURL(built).href;
  expect(fastStringPrototype(`await import('bullmq'); await import(${JSON.stringify(module)})`)).toBe(true);
});
