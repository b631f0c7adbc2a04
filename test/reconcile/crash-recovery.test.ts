import { existsSync } from 'node:fs';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { damagedStates } from '../support/damaged-states.js';
import { killedWriter } from '../support/killed-writer.js';
import { spin, testDir } from '../support/spin-cli.js';

// "One truth after any crash", as a user meets it through the built binary: a damaged state file
// is refused by every command that reads it, and the leftovers of a writer killed mid-write do
// not stop the next command.

const pkg = `package: demo
commands:
  volume: { resource: storage, action: add_volume, params: { path: data } }
  image:
    resource: storage
    action: create_image
    needs: [volume]
    params: { volume: data, image: disk.qcow2, image_size: 1, format: qcow2 }
`;

/** A temp SPIN_HOME holding `demo.spin.yaml`; removed when the test ends. */
async function home(): Promise<{ home: string; file: string; state: string }> {
  const dir = await testDir('spin-crash-');
  const file = join(dir, 'demo.spin.yaml');
  await writeFile(file, pkg);
  return { home: dir, file, state: join(dir, 'state.json') };
}

const byName = (name: string): (typeof damagedStates)[number] => {
  const found = damagedStates.find((d) => d.name === name);
  if (found === undefined) throw new Error(`no damaged state '${name}'`);
  return found;
};

// The case of the issue in every command, and one more case each.
const runs: { command: string; damage: string }[] = [
  ['plan', 'packages that are an array'],
  ['apply', 'a package record that is null'],
  ['status', 'a command record missing status'],
  ['destroy', 'commands that are a string'],
].flatMap(([command = '', other = '']) => [
  { command, damage: 'a command record that is null' },
  { command, damage: other },
]);

describe('a damaged state file, through the binary', () => {
  it.each(runs)('spin $command refuses it with exit 3: $damage', async ({ command, damage }) => {
    const { home: dir, file, state } = await home();
    const { text, field } = byName(damage);
    await writeFile(state, text);
    const args = command === 'status' ? [] : command === 'destroy' ? ['demo'] : [file];
    const run = await spin([command, ...args], { env: { SPIN_HOME: dir } });
    expect(run.code, run.stderr).toBe(3);
    expect(run.stderr).toContain(`error: state file ${state} is corrupt: ${field} `);
    expect(run.stderr).toContain(`${state}.backup`);
    expect(run.stderr).not.toMatch(/TypeError|^\s+at /m);
    expect(await readFile(state, 'utf8')).toBe(text);
    expect(existsSync(`${state}.backup`)).toBe(false);
    expect(existsSync(join(dir, 'images'))).toBe(false);
  });
});

describe('leftovers of writers killed with kill -9', () => {
  it('are cleared by the next command: destroy succeeds; a user’s hidden file stays', async () => {
    const { home: dir, file, state } = await home();
    const env = { SPIN_HOME: dir };
    const applied = await spin(['apply', file], { env });
    expect(applied.code, applied.stderr).toBe(0);
    const volume = join(dir, 'images', 'data');
    // An apply killed while it wrote an image, and while it wrote the state.
    await killedWriter(volume, ['.spin-tmp-{pid}-0123456789ab-disk2.qcow2']);
    await killedWriter(dir, ['.state.json.{pid}.0b6e2f57-2d0c-4c8e-9a51-5f1d1e7b3c11.tmp']);
    await writeFile(join(dir, '.my-notes'), 'mine');
    const destroyed = await spin(['destroy', 'demo'], { env });
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(existsSync(volume)).toBe(false);
    expect(await readdir(join(dir, 'images'))).toEqual([]);
    const names = await readdir(dir);
    expect(names.filter((n) => n.startsWith('.state.json.'))).toEqual([]);
    expect(await readFile(join(dir, '.my-notes'), 'utf8')).toBe('mine');
    const after = JSON.parse(await readFile(state, 'utf8')) as { packages: object };
    expect(after.packages).toEqual({});
  });
});
