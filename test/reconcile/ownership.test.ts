import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

/** Two package files in one home, each with its own command on volume `one`. */
async function twoClaimants(): Promise<{ home: string; same: string; two: string }> {
  const home = await testDir('spin-owner-');
  const same = join(home, 'same.spin.yaml');
  const two = join(home, 'two.spin.yaml');
  await writeFile(
    same,
    'package: same\ncommands:\n  vol: { resource: storage, action: add_volume, params: { path: one } }\n',
  );
  await writeFile(
    two,
    'package: two\ncommands:\n  other: { resource: storage, action: add_volume, params: { path: other } }\n  vol: { resource: storage, action: add_volume, params: { path: one } }\n',
  );
  return { home, same, two };
}

describe('ownership between packages', () => {
  it('refuses, at plan time and with exit 3, a package claiming a volume another owns', async () => {
    const { home, same, two } = await twoClaimants();
    const env = { SPIN_HOME: home };
    expect((await spin(['apply', same, '--output', 'plain'], { env })).code).toBe(0);
    for (const args of [
      ['plan', two],
      ['apply', two, '--output', 'plain'],
    ]) {
      const run = await spin(args, { env });
      expect(run.code, `${args.join(' ')}: ${run.stdout}${run.stderr}`).toBe(3);
      expect(run.stderr).toContain(
        `${two}:4:3: two/vol claims volume one, which package same owns (${same}:3:3, command vol)`,
      );
    }
    // Nothing of `two` ran, not even its command that claims nothing of `same`'s.
    expect(existsSync(join(home, 'images', 'other'))).toBe(false);
    const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    expect(Object.keys(state.packages)).toEqual(['same']);
  });

  it('refuses two new packages that claim the same volume in one apply', async () => {
    const { home, same, two } = await twoClaimants();
    const run = await spin(['apply', same, two, '--output', 'plain'], { env: { SPIN_HOME: home } });
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(
      `two/vol claims volume one, which same/vol claims too (${same}:3:3)`,
    );
    expect(existsSync(join(home, 'images', 'one'))).toBe(false);
  });

  it('never lets destroy take from a package what it holds too (a state from before ownership)', async () => {
    const { home, same, two } = await twoClaimants();
    const env = { SPIN_HOME: home };
    expect((await spin(['apply', same, '--output', 'plain'], { env })).code).toBe(0);
    // Before ownership was kept, `two` could apply too and record the same volume as its own.
    const path = join(home, 'state.json');
    const state = JSON.parse(await readFile(path, 'utf8')) as {
      packages: Record<string, { file: string; commands: Record<string, unknown> }>;
    };
    const record = state.packages['same']?.commands['vol'];
    state.packages['two'] = { ...state.packages['same']!, file: two, commands: { vol: record } };
    await writeFile(path, JSON.stringify(state));
    const destroyed = await spin(['destroy', 'two', '--output', 'plain'], { env });
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(existsSync(join(home, 'images', 'one'))).toBe(true);
    const after = JSON.parse(await readFile(path, 'utf8')) as { packages: Record<string, unknown> };
    expect(Object.keys(after.packages)).toEqual(['same']);
    // Its owner's destroy does remove it.
    expect((await spin(['destroy', 'same', '--output', 'plain'], { env })).code).toBe(0);
    expect(existsSync(join(home, 'images', 'one'))).toBe(false);
  });
});

describe('bounds the schema and the agents share', () => {
  it('refuses at validate an image larger than the agent creates', async () => {
    const home = await testDir('spin-bounds-');
    const file = join(home, 'big.spin.yaml');
    await writeFile(
      file,
      'package: big\ncommands:\n  vol: { resource: storage, action: add_volume, params: { path: v } }\n  img: { resource: storage, action: create_image, needs: [vol], params: { volume: v, image: i.raw, image_size: 100000000 } }\n',
    );
    const run = await spin(['validate', file]);
    expect(run.code).toBe(2);
    expect(run.stdout + run.stderr).toMatch(/big\.spin\.yaml:4:\d+.*image_size.*65536/);
  });
});
