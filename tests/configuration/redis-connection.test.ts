// What loading the Redis client does to the process: ioredis 6's `class VerbatimString extends
// String` leaves V8's String.prototype in dictionary mode (every string method call then goes
// through a generic lookup), and the module that makes every Redis client turns it fast again.
// Checked in a fresh node with V8's own test of the object (natives syntax), on the built module
// as the processes load it (npx tsc -p tsconfig.build.json).
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const fastStringPrototype = (imports: string) => {
  const script = `${imports}; console.log(JSON.stringify(%HasFastProperties(String.prototype)));`;
  const out = execFileSync(
    process.execPath,
    ['--allow-natives-syntax', '--input-type=module', '-e', script],
    {
      cwd: resolve('.'),
    },
  );
  return JSON.parse(out.toString()) as boolean;
};

test('ioredis alone leaves String.prototype slow (why the module below does anything)', () => {
  expect(fastStringPrototype("await import('ioredis')")).toBe(false);
});

test('after the Redis connection module (and BullMQ) is loaded, String.prototype is fast again', () => {
  const module = pathToFileURL(resolve('dist/bot/configuration/redis-connection.js')).href;
  expect(fastStringPrototype(`await import('bullmq'); await import(${JSON.stringify(module)})`)).toBe(true);
});
