import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, openSync, statfsSync, writeSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';

/** Fills the disk holding `dir` until `leave` bytes are left free; returns the filler file. */
function fill(dir: string, leave: number): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w');
  try {
    const free = statfsSync(dir);
    let left = free.bavail * free.bsize - leave;
    const block = Buffer.alloc(16 * 1024);
    while (left > 0) left -= writeSync(fd, block, 0, Math.min(block.length, left));
  } catch (error) {
    expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
  } finally {
    closeSync(fd);
  }
  return filler;
}

/**
 * For each of these amounts of free space, the disk fills up somewhere else on an apply's path:
 * the state lock, the broker's lock and pid file, the store's file, its WAL, the state file.
 */
const leaves = [0, 8_000, 30_000, 120_000, 190_000];

it('a full disk anywhere ends an apply with no_space, leaves nothing behind, and the next apply works', async () => {
  expect(
    process.getuid?.(),
    'this test mounts a 4 MiB tmpfs as SPIN_HOME and must run as root (CI does)',
  ).toBe(0);
  const home = await testDir('spin-disk-full-');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', home], {
    encoding: 'utf8',
  });
  expect(mounted.status, `mount -t tmpfs failed: ${mounted.stderr}`).toBe(0);
  onTestFinished(() => {
    execFileSync('umount', ['-l', home]);
  });
  const env = { SPIN_HOME: home };
  const file = join(home, 'pkg.spin.yaml');
  const text = `package: full
commands:
  vol: { resource: storage, action: add_volume, params: { path: data } }
  img: { resource: storage, action: create_image, needs: [vol], params: { volume: data, image: a.qcow2, image_size: 1, format: qcow2 } }
`;
  for (const leave of leaves) {
    for (const name of await readdir(home)) await rm(join(home, name), { recursive: true });
    await writeFile(file, text);
    const filler = fill(home, leave);
    const full = await spin(['apply', file, '--output', 'plain'], { env });
    const where = `with ${String(leave)} bytes free`;
    expect(full.code, where).toBe(1);
    expect(full.stdout + full.stderr, where).toMatch(/No space left on the device|is full/);
    expect(full.stderr, where).not.toMatch(/\n\s+at /); // no stack trace
    const left = await readdir(home);
    expect(
      left.filter(
        (f) => f.endsWith('.tmp') || f === 'state.json.lock' || f.startsWith('spind.pid'),
      ),
      where,
    ).toEqual([]);
    await rm(filler);
    const next = await spin(['apply', file, '--output', 'plain'], { env });
    expect(next.code, `${where}, then freed:\n${next.stdout}${next.stderr}`).toBe(0);
    const plan = await spin(['plan', file], { env });
    expect(plan.stdout, where).toContain('No changes: 2 commands up to date.');
  }
});
