// `make demo`, shortened, so the demo cannot rot: the real program (dist/demo/main.js) as a new
// user runs it, to its final line; then nothing it started may still run, and the plot page it
// names holds both plots with data. Its options reject bad values by name.
import { DEFAULT_OPTIONS, chooseNode, parseDemoOptions } from '../../demo/options.js';
import { runShortDemo } from '../support/short-demo.js';

describe('make demo', () => {
  test('options: flags over environment over defaults; bad values named', () => {
    expect(parseDemoOptions([], {})).toEqual(DEFAULT_OPTIONS);
    expect(parseDemoOptions(['--guilds', '400'], { DEMO_GUILDS: '900', DEMO_EVENT_RATE: '7' })).toMatchObject(
      {
        guilds: 400,
        eventRate: 7,
      },
    );
    expect(parseDemoOptions(['--no-reshard'], {})).toMatchObject({ reshard: false });
    expect(() => parseDemoOptions(['--rate', 'fast'], { DEMO_BURST: '-1' })).toThrow(
      /--rate="fast" must be an integer from 1 to 5000\nDEMO_BURST="-1" must be an integer from 0/,
    );
    expect(() => parseDemoOptions(['--colour', 'red'], {})).toThrow(/colour/);
    expect(parseDemoOptions(['--node', 'kwok'], { DEMO_NODE: 'real' })).toMatchObject({ node: 'kwok' });
    expect(parseDemoOptions([], { DEMO_NODE: 'real' })).toMatchObject({ node: 'real' });
    expect(() => parseDemoOptions([], { DEMO_NODE: 'fake' })).toThrow(
      /DEMO_NODE="fake" must be one of auto, real, kwok/,
    );
  });

  test('--node: auto is the real node when the machine can start one, else kwok with a warning; a choice is kept', () => {
    expect(chooseNode('auto', undefined)).toEqual({ node: 'real' });
    expect(chooseNode('auto', 'a real node needs root')).toEqual({
      node: 'kwok',
      warning: expect.stringMatching(/^WARNING: no real node on this machine \(a real node needs root\)/),
    });
    expect(chooseNode('real', 'a real node needs root')).toEqual({ node: 'real' });
    expect(chooseNode('kwok', undefined)).toEqual({ node: 'kwok' });
  });

  test('a short scenario on kwok runs to "DEMO OK" with 0 lost and 0 duplicated, and leaves nothing running', async () => {
    const out = await runShortDemo('kwok');
    expect(out).toMatch(/demo-bot-gateway-0\s+pid \d+ {2}metrics http:\/\/127\.0\.0\.1:\d+\/metrics/);
  }, 600_000);
});
