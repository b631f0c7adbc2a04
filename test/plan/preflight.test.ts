import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { spin, testDir } from '../support/spin-cli.js';
import { expectDocument } from '../support/output-schema.js';

/** A VM package: a qcow2 disk, a config naming `kernel`, and its start. */
function vmPackage(kernel: string, extra = ''): string {
  return `package: pre
commands:
  disks: { resource: storage, action: add_volume, params: { path: disks } }
  disk:
    resource: storage
    action: create_image
    needs: [disks]
    params: { volume: disks, image: root.qcow2, image_size: 1, format: qcow2 }
${extra}  config:
    resource: emulation
    action: write_config
    needs: [disk]
    params:
      id: pre
      vm: { name: pre, cpus: 1, memory: 64, images: [{ volume: disks, path: root.qcow2 }], kernel: ${kernel} }
  start: { resource: emulation, action: start, needs: [config], params: { id: pre } }
`;
}

/** A home with a kernel (any file will do: nothing boots) at images/boot/vmlinuz. */
async function homeWithKernel(): Promise<string> {
  const home = await testDir('spin-preflight-');
  await mkdir(join(home, 'images/boot'), { recursive: true });
  await writeFile(join(home, 'images/boot/vmlinuz'), 'not really a kernel');
  return home;
}

describe('preflight: what a package needs of the machine, named before anything runs', () => {
  it('names qemu-system-x86_64 and qemu-img missing from PATH, with file:line, and runs nothing', async () => {
    const home = await homeWithKernel();
    const file = join(home, 'pre.spin.yaml');
    await writeFile(file, vmPackage('boot/vmlinuz'));
    // A PATH with no qemu on it (spin itself runs from node's absolute path).
    const noQemu = await testDir('spin-no-qemu-');
    const env = { SPIN_HOME: home, PATH: noQemu };

    const planned = await spin(['plan', file], { env });
    expect(planned.code).toBe(2);
    expect(planned.stdout).toContain('Plan: 4 to create.');
    expect(planned.stderr).toContain('nothing was run');
    expect(planned.stderr).toContain(
      `${file}:16:3: pre/start: emulation.start runs qemu-system-x86_64, which is not on PATH`,
    );
    expect(planned.stderr).toContain(
      `${file}:4:3: pre/disk: storage.create_image runs qemu-img, which is not on PATH`,
    );
    expect(planned.stderr).toMatch(/hint: Install qemu/);

    const applied = await spin(['apply', file, '--output', 'plain'], { env });
    expect(applied.code).toBe(2);
    expect(applied.stderr).toContain('runs qemu-system-x86_64, which is not on PATH');
    expect(applied.stdout).not.toMatch(/running|succeeded|failed/);
    expect(existsSync(join(home, 'images/disks'))).toBe(false);
    expect((await spin(['status'], { env })).stdout).toContain('No packages applied yet.');
  });

  it('names a kernel that does not exist under the images root, at its write_config', async () => {
    const home = await homeWithKernel();
    const file = join(home, 'pre.spin.yaml');
    await writeFile(file, vmPackage('boot/vmlinuz-6.99'));
    const env = { SPIN_HOME: home };

    const planned = await spin(['plan', file, '--json'], { env });
    expect(planned.code).toBe(2);
    // Asked for JSON, the refusal is an error document naming each problem.
    const json = expectDocument<{
      error: { code: string; details: { problems: { command: string; reason: string }[] } };
    }>('error', planned.stdout);
    expect(json.error.code).toBe('preflight_failed');
    expect(json.error.details.problems).toEqual([
      expect.objectContaining({ command: 'config', reason: 'missing-file' }),
    ]);
    const applied = await spin(['apply', file], { env });
    expect(applied.code).toBe(2);
    expect(applied.stderr).toContain(
      `${file}:9:3: pre/config: the kernel 'boot/vmlinuz-6.99' of VM pre does not exist under the images root (${join(home, 'images')}), and no command of this run makes it`,
    );
    expect(existsSync(join(home, 'images/disks'))).toBe(false);
  });

  it('does not refuse a kernel that a command of the run makes, nor a config without its start', async () => {
    const home = await homeWithKernel();
    const file = join(home, 'pre.spin.yaml');
    const copy = `  kernel:
    resource: storage
    action: copy_image
    params: { from_volume: boot, from_image: vmlinuz, to_volume: boot, to_image: vmlinuz-copy }
`;
    await writeFile(file, vmPackage('boot/vmlinuz-copy', copy));
    const env = { SPIN_HOME: home };
    const planned = await spin(['plan', file], { env });
    expect(planned.stderr).toBe('');
    expect(planned.code).toBe(0);

    // Without its start the config is only written: the kernel may come later.
    const configOnly = vmPackage('boot/vmlinuz-later').replace(/ {2}start:.*\n/, '');
    await writeFile(file, configOnly);
    const alone = await spin(['plan', file], { env });
    expect(alone.stderr).toBe('');
    expect(alone.code).toBe(0);
  });

  it('checks only what runs: an applied package is not refused later for a missing program', async () => {
    const home = await homeWithKernel();
    const file = join(home, 'raw.spin.yaml');
    await writeFile(
      file,
      `package: raw
commands:
  v: { resource: storage, action: add_volume, params: { path: v } }
  i: { resource: storage, action: create_image, needs: [v], params: { volume: v, image: i.raw, image_size: 1 } }
`,
    );
    // A raw image needs no qemu-img.
    const noQemu = await testDir('spin-no-qemu-');
    const applied = await spin(['apply', file], { env: { SPIN_HOME: home, PATH: noQemu } });
    expect(applied.code).toBe(0);
    // Grown in place, it does: only that is named.
    await writeFile(file, (await readFile(file, 'utf8')).replace('image_size: 1', 'image_size: 2'));
    const grown = await spin(['plan', file], { env: { SPIN_HOME: home, PATH: noQemu } });
    expect(grown.code).toBe(2);
    expect(grown.stderr).toContain(`${file}:4:3: raw/i: storage.create_image runs qemu-img`);
  });
});
