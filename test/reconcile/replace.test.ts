import { existsSync } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

const gib = 1024 ** 3;

/** A package of a volume and an image in it, written to `file` with the given image params. */
async function writeDisk(file: string, volume: string, image: string): Promise<void> {
  await writeFile(
    file,
    [
      'package: disks',
      'commands:',
      '  vol:',
      '    resource: storage',
      '    action: add_volume',
      `    params: { path: ${volume} }`,
      '  disk:',
      '    resource: storage',
      '    action: create_image',
      '    needs: [vol]',
      `    params: { volume: ${volume}, ${image} }`,
      '',
    ].join('\n'),
  );
}

async function setUp(): Promise<{ home: string; file: string; env: Record<string, string> }> {
  const home = await testDir('spin-replace-');
  return { home, file: join(home, 'disks.spin.yaml'), env: { SPIN_HOME: home } };
}

interface StateRecord {
  status: string;
  params: Record<string, unknown>;
}

async function recordOf(home: string, id: string): Promise<StateRecord | undefined> {
  const state = JSON.parse(await readFile(join(home, 'state.json'), 'utf8')) as {
    packages: Record<string, { commands: Record<string, StateRecord> }>;
  };
  return state.packages['disks']?.commands[id];
}

async function head(path: string, bytes: number): Promise<string> {
  const handle = await open(path);
  try {
    const { buffer, bytesRead } = await handle.read(Buffer.alloc(bytes), 0, bytes, 0);
    return buffer.subarray(0, bytesRead).toString();
  } finally {
    await handle.close();
  }
}

describe('changes that cannot be made in place', () => {
  it('grows an image in place, and replaces a smaller one only with --allow-replace', async () => {
    const { home, file, env } = await setUp();
    const image = join(home, 'images', 'data', 'disk.raw');
    await writeDisk(file, 'data', 'image: disk.raw, image_size: 2');
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(0);
    await writeFile(image, 'what the guest wrote', { flag: 'r+' });
    // Growing keeps what is in it.
    await writeDisk(file, 'data', 'image: disk.raw, image_size: 3');
    const grow = await spin(['plan', file], { env });
    expect(grow.stdout).toMatch(/ {3}~ disk\s+update\s+changed: params\.image_size/);
    const grown = await spin(['apply', file, '-o', 'plain'], { env });
    expect(grown.code, grown.stdout + grown.stderr).toBe(0);
    expect(grown.stdout).toContain('image data/disk.raw grown to 3 GiB');
    expect((await stat(image)).size).toBe(3 * gib);
    expect(await head(image, 20)).toBe('what the guest wrote');

    await writeDisk(file, 'data', 'image: disk.raw, image_size: 1');
    const plan = await spin(['plan', file], { env });
    expect(plan.code).toBe(0);
    expect(plan.stdout).toContain(
      '-/+ disk  replace    params.image_size shrinks from 3 to 1 GiB: cannot change in place',
    );
    expect(plan.stdout).toContain('deletes what it holds: needs --allow-replace');
    expect(plan.stdout).toContain('Plan: 1 to replace, 1 unchanged.');

    const refused = await spin(['apply', file, '-o', 'plain'], { env });
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stderr).toContain(
      `${file}:7:3: disks/disk would be replaced (params.image_size shrinks from 3 to 1 GiB: cannot change in place), which deletes what it holds`,
    );
    expect(refused.stderr).toContain('--allow-replace');
    expect((await stat(image)).size).toBe(3 * gib);

    const replaced = await spin(['apply', file, '-o', 'plain', '--allow-replace'], { env });
    expect(replaced.code, replaced.stdout + replaced.stderr).toBe(0);
    expect(replaced.stdout).toMatch(/disks\/undo:disk succeeded .*image data\/disk\.raw deleted/);
    expect(replaced.stdout).toMatch(/disks\/disk succeeded .*created \(raw, 1 GiB\)/);
    expect(replaced.stdout).toContain('Apply complete: 1 succeeded, 1 unchanged.');
    expect((await stat(image)).size).toBe(1 * gib);
    expect((await recordOf(home, 'disk'))?.params['image_size']).toBe(1);
    expect((await spin(['plan', file], { env })).stdout).toContain('No changes');
  });

  it("lets a command's own `replace: allow` replace it, and replaces what depends on it first in reverse order", async () => {
    const { home, file, env } = await setUp();
    await writeDisk(file, 'old', 'image: disk.raw, image_size: 1');
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(0);
    // A new volume name: the volume and the image in it are both replaced.
    await writeFile(
      file,
      (await readFile(file, 'utf8'))
        .replaceAll('old', 'new')
        .replace('    action: create_image\n', '    action: create_image\n    replace: allow\n'),
    );
    const plan = await spin(['plan', file], { env });
    expect(plan.stdout).toContain(
      '-/+ vol   replace    params.path changed: cannot change in place',
    );
    expect(plan.stdout).toContain('then: disk');
    expect(plan.stdout).toContain(
      '-/+ disk  replace    params.volume changed: cannot change in place',
    );
    // The volume holds the image: replacing it deletes what it holds, and only disk allows that.
    const refused = await spin(['apply', file, '-o', 'plain'], { env });
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('disks/vol would be replaced');
    expect(refused.stderr).not.toContain('disks/disk would be replaced');
    expect(existsSync(join(home, 'images', 'old', 'disk.raw'))).toBe(true);

    const applied = await spin(['apply', file, '-o', 'plain', '--allow-replace'], { env });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    const order = [...applied.stdout.matchAll(/disks\/(\S+) succeeded/g)].map((m) => m[1]);
    expect(order).toEqual(['undo:disk', 'undo:vol', 'vol', 'disk']);
    expect(existsSync(join(home, 'images', 'old'))).toBe(false);
    expect(existsSync(join(home, 'images', 'new', 'disk.raw'))).toBe(true);
  });

  it('forces the removal of a volume with files only when the replace was allowed', async () => {
    const { home, file, env } = await setUp();
    await writeFile(
      file,
      'package: disks\ncommands:\n  vol: { resource: storage, action: add_volume, params: { path: a } }\n',
    );
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(0);
    await writeFile(file, (await readFile(file, 'utf8')).replace('path: a', 'path: b'));
    // Empty: nothing is lost, so no flag is needed.
    const empty = await spin(['plan', file], { env });
    expect(empty.stdout).not.toContain('deletes what it holds');
    await writeFile(join(home, 'images', 'a', 'notes.txt'), 'kept by hand');
    const held = await spin(['plan', file], { env });
    expect(held.stdout).toContain('deletes what it holds: needs --allow-replace');
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(3);
    expect(existsSync(join(home, 'images', 'a', 'notes.txt'))).toBe(true);
    const applied = await spin(['apply', file, '-o', 'plain', '--allow-replace'], { env });
    expect(applied.code, applied.stdout + applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/volume a removed with 1 entries/);
    expect(existsSync(join(home, 'images', 'b'))).toBe(true);
  });

  it('keeps the record of what is still there when the undo before a replace fails', async () => {
    const { home, file, env } = await setUp();
    await writeDisk(file, 'data', 'image: disk.img, image_size: 1');
    expect((await spin(['apply', file, '-o', 'plain'], { env })).code).toBe(0);
    // Something else took the image's place: the undo cannot delete it as an image.
    await rm(join(home, 'images', 'data', 'disk.img'));
    await mkdir(join(home, 'images', 'data', 'disk.img'));
    await writeDisk(file, 'data', 'image: disk.img, image_size: 1, format: qcow2');
    const applied = await spin(['apply', file, '-o', 'plain'], { env });
    expect(applied.code).toBe(1);
    expect(applied.stdout).toMatch(/disks\/undo:disk failed/);
    expect(applied.stdout).toMatch(/disks\/disk skipped/);
    expect(await recordOf(home, 'disk')).toMatchObject({
      status: 'succeeded',
      params: { image_size: 1 },
    });
    expect((await recordOf(home, 'disk'))?.params['format']).toBeUndefined();
    // So the next plan still shows the replace, and it goes through once the path is free.
    expect((await spin(['plan', file], { env })).stdout).toMatch(/-\/\+ disk\s+replace/);
    await rm(join(home, 'images', 'data', 'disk.img'), { recursive: true });
    const again = await spin(['apply', file, '-o', 'plain'], { env });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect((await recordOf(home, 'disk'))?.params['format']).toBe('qcow2');
  });
});
