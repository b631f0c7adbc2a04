import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

const disks = `package: disks
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  disk: { resource: storage, action: create_image, needs: [vol], params: { volume: data, image: d.raw, image_size: 1 } }
`;

async function setUp(): Promise<{ home: string; file: string; env: Record<string, string> }> {
  const home = await testDir('spin-import-');
  const file = join(home, 'disks.spin.yaml');
  await writeFile(file, disks);
  return { home, file, env: { SPIN_HOME: home } };
}

async function statusOf(home: string, id: string): Promise<string | undefined> {
  const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as {
    packages: Record<string, { commands: Record<string, { status: string }> }>;
  };
  return state.packages['disks']?.commands[id]?.status;
}

describe('spin import', () => {
  it('never takes over silently what exists and no package manages; import makes it explicit', async () => {
    const { home, file, env } = await setUp();
    // A volume made by hand, with a file in it.
    await mkdir(join(home, 'images', 'data'), { recursive: true });
    await writeFile(join(home, 'images', 'data', 'notes.txt'), 'mine');

    const plan = await spin(['plan', file], { env });
    expect(plan.stdout).toMatch(/\+ vol\s+create\s+exists already, and no package manages it/);
    const refused = await spin(['apply', file, '-o', 'plain'], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain(
      `${file}:3:3: disks/vol would take over what exists already and no package manages`,
    );
    expect(refused.stderr).toContain(`import it first: spin import ${file} disks/vol`);
    expect(existsSync(join(home, 'images', 'data', 'd.raw'))).toBe(false);

    // Naming the package imports what is there and leaves the rest to apply.
    const imported = await spin(['import', file, 'disks'], { env });
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stdout).toContain('disks/vol imported (entries=1)');
    expect(imported.stdout).toContain('disks/disk not there: apply will create it');
    expect(await statusOf(home, 'vol')).toBe('succeeded');
    expect(await statusOf(home, 'disk')).toBeUndefined();

    const applied = await spin(['apply', file, '-o', 'plain'], { env });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toContain('Apply complete: 1 succeeded, 1 unchanged.');
    // Once imported, it is the package's: destroy removes it (the image first, then the volume;
    // a volume with a file of the user's is refused, as for any volume).
    await writeFile(join(home, 'images', 'data', 'notes.txt'), '');
    const destroyed = await spin(['destroy', 'disks', '-o', 'plain'], { env });
    expect(destroyed.stdout).toMatch(/disks\/vol failed.*not empty/);
  });

  it('refuses to import what is not there, what the state manages, or what another package owns', async () => {
    const { home, file, env } = await setUp();
    const nothing = await spin(['import', file, 'disks/vol'], { env });
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toContain(
      'nothing to import for disks/vol: what it would make is not there (volume data)',
    );
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(0);
    const managed = await spin(['import', file, 'disks/vol'], { env });
    expect(managed.code).toBe(3);
    expect(managed.stderr).toContain('disks/vol is managed already');

    const other = join(home, 'other.spin.yaml');
    await writeFile(other, disks.replace('package: disks', 'package: other'));
    const owned = await spin(['import', other, 'other/disk'], { env });
    expect(owned.code).toBe(3);
    expect(owned.stderr).toContain('claims image data/d.raw, which package disks owns');
    const unknown = await spin(['import', file, 'disks/nope'], { env });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("no command matches 'disks/nope'");
  });
});
