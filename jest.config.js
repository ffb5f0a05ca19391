// Tests run as native ES modules (node --experimental-vm-modules) because several core
// dependencies (@kubernetes/client-node among them) ship only ESM. swc strips the types;
// `make lint` is what type-checks.
/** @type {import('jest').Config} */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/tests'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': [
      '@swc/jest',
      {
        jsc: { parser: { syntax: 'typescript' }, target: 'es2023' },
        module: { type: 'es6' },
      },
    ],
  },
  testTimeout: 120_000,
  // Real control planes and databases: one file at a time keeps 2 cores from thrashing.
  maxWorkers: 1,
  // A process a test left running would keep jest from exiting: named and killed at the end.
  globalSetup: '<rootDir>/tests/support/leftovers.ts',
  globalTeardown: '<rootDir>/tests/support/leftovers.ts',
};
