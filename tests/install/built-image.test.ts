// The image built from the real Dockerfile (testenv/images/build.sh), run: every command starts
// from it through its entrypoint, as its user, and it carries only what runs.
import {
  buildProjectImage,
  projectImageUnavailable,
  renderOperatorLaunch,
  runInImage,
  type ProjectImage,
} from '../../testenv/index.js';

/** The runtime image's budget, the Node base (~225 MB, most of it the node binary) included. */
const MAX_IMAGE_BYTES = 300e6;

/** What a command's output shows when its modules or files are missing from the image. */
const MISSING = /ERR_MODULE_NOT_FOUND|Cannot find (module|package)|ENOENT|does not exist/;

const chartLaunch = renderOperatorLaunch();
const unavailable = projectImageUnavailable();
if (unavailable) console.warn(`SKIPPING the built-image tests: ${unavailable}`);
// Where CI runs (as root), an image that cannot be built is a failure, not a skip.
const describeImage = unavailable && process.env.CI !== 'true' ? describe.skip : describe;

describeImage('the built image', () => {
  let built: ProjectImage;
  beforeAll(() => {
    built = buildProjectImage();
    // Where the bytes go, for whoever reads the test log.
    console.log(
      `image ${(built.sizeBytes / 1e6).toFixed(0)} MB (Node base ${(built.baseSizeBytes / 1e6).toFixed(0)} MB), built in ${built.buildSeconds}s`,
    );
    // A cold build (empty layer cache) downloads the npm tree and compiles: minutes.
  }, 30 * 60_000);

  test('is at most 300 MB, the Node base included', () => {
    expect(built.sizeBytes).toBeGreaterThan(built.baseSizeBytes);
    expect(built.sizeBytes).toBeLessThanOrEqual(MAX_IMAGE_BYTES);
  });

  test('every command starts from it: modules, migrations and files are all there', () => {
    const started = {
      help: runInImage(built, ['--help']),
      operator: runInImage(built, ['operator', '--help']),
      // The chart's own command line (the entrypoint with node flags inserted) and env.
      chartOperator: runInImage(built, [...chartLaunch.args, '--help'], {
        command: chartLaunch.command,
        env: chartLaunch.env,
      }),
      // Without their settings the commands stop with a configuration error: they loaded.
      gateway: runInImage(built, ['gateway']),
      worker: runInImage(built, ['worker']),
      'register-commands': runInImage(built, ['register-commands']),
      // Reads its migrations before connecting: a refused connection means it found them.
      migrate: runInImage(built, ['migrate'], {
        env: { DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' },
      }),
    };
    for (const [name, r] of Object.entries(started)) {
      expect({ name, out: r.out }).not.toEqual({ name, out: expect.stringMatching(MISSING) });
      expect({ name, exited: r.status !== null }).toEqual({ name, exited: true });
    }
    expect(started.help).toEqual({ status: 0, out: expect.stringMatching(/^usage: shardwarden </) });
    expect(started.operator).toEqual({
      status: 0,
      out: expect.stringMatching(/^usage: shardwarden operator/),
    });
    expect(started.chartOperator).toEqual(started.operator);
    expect(started.gateway.out).toMatch(/^gateway: SHARDWARDEN_[A-Z_]+ is required but not set/m);
    expect(started.worker.out).toMatch(/^worker: SHARDWARDEN_[A-Z_]+ is required but not set/m);
    expect(started['register-commands'].out).toMatch(/^register-commands: [A-Z_]+ is required but not set/m);
    expect(started.migrate.out).toMatch(/^migrate: connect ECONNREFUSED/m);
  });

  test('runs as uid 10001 and carries no build-time package', () => {
    expect(runInImage(built, ['-u'], { command: ['id'] }).out.trim()).toBe('10001');
    const packages = runInImage(built, ['node_modules', 'node_modules/@prisma'], { command: ['ls'] }).out;
    for (const buildOnly of ['prisma', 'typescript', 'react', 'effect', 'elkjs', '@electric-sql', 'jest'])
      expect({ buildOnly, present: packages.split(/\s+/).includes(buildOnly) }).toEqual({
        buildOnly,
        present: false,
      });
    // The Prisma client the runtime uses is there (with its Postgres query compiler only).
    expect(packages.split(/\s+/)).toEqual(expect.arrayContaining(['client', 'adapter-pg']));
  });
});
