import { copyFile, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

const pkg = `package: one
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
`;

async function appliedHome(): Promise<{ home: string; file: string; env: Record<string, string> }> {
  const home = await testDir('spin-foreign-');
  const file = join(home, 'pkg.spin.yaml');
  await writeFile(file, pkg);
  const env = { SPIN_HOME: home };
  expect((await spin(['apply', file, '--output', 'plain'], { env })).code).toBe(0);
  return { home, file, env };
}

it('refuses a state copied in from another home with exit 3, and adopts one begun afresh through import', async () => {
  const a = await appliedHome();
  const b = await appliedHome();
  const state = join(b.home, 'state.json');
  const before = await readFile(state, 'utf8');
  await copyFile(join(a.home, 'state.json'), state);
  const copied = await readFile(state, 'utf8');

  // A plan reads the file as it is, without a lock or the broker: only what would act on it
  // checks that the file is this home's.
  expect((await spin(['plan', b.file], { env: b.env })).code).toBe(0);
  const refused = await spin(['apply', b.file, '--output', 'plain'], { env: b.env });
  expect(refused.code).toBe(3);
  expect(refused.stderr).toMatch(
    /state\.json has lineage [0-9a-f-]+, but this home's broker has served it as lineage [0-9a-f-]+/,
  );
  expect(refused.stderr).toMatch(/hint: Put back this home's state/);
  expect(await readFile(state, 'utf8')).toBe(copied); // nothing written over it
  expect(JSON.parse(before)).not.toEqual(JSON.parse(copied));

  // Moved aside, the home starts afresh: the next spin adopts the new state, and what the old
  // one managed is taken over only by an import.
  await rename(state, `${state}.foreign`);
  const fresh = await spin(['apply', b.file, '--output', 'plain'], { env: b.env });
  expect(fresh.code).toBe(3);
  expect(fresh.stderr).toContain('one/vol would take over what exists already');
  const imported = await spin(['import', b.file, 'one'], { env: b.env });
  expect(imported.code, imported.stderr).toBe(0);
  const again = await spin(['apply', b.file, '--output', 'plain'], { env: b.env });
  expect(again.stdout).toContain('Nothing to do');
});
