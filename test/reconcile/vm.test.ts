import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { spin, startSpin, testDir } from '../support/spin-cli.js';
import { endVmsAfterEach, tinyVm, type TinyVm } from '../support/tiny-vm.js';

let guest: TinyVm;
beforeAll(async () => {
  guest = await tinyVm();
});

/** VMs a failed test may have left running: ended so nothing outlives the run. */
const pidFiles = endVmsAfterEach();

/** A package that boots the tiny guest from the boot volume and waits for its marker. */
function vmPackage(marker: string, append: string, memory = 128, readyTimeout = '90s'): string {
  return `package: tiny
defaults: { timeout: 2m }
commands:
  disks: { resource: storage, action: add_volume, params: { path: disks } }
  disk:
    resource: storage
    action: create_image
    needs: [disks]
    params: { volume: disks, image: root.qcow2, image_size: 1, format: qcow2 }
  config:
    resource: emulation
    action: write_config
    needs: [disk]
    params:
      id: tiny
      vm:
        name: tiny
        cpus: 1
        memory: ${String(memory)}
        images: [{ volume: disks, path: root.qcow2 }]
        kernel: boot/vmlinuz
        initrd: boot/initrd.gz
        append: ${JSON.stringify(append)}
  start:
    resource: emulation
    action: start
    needs: [config]
    params: { id: tiny, ready_when: ${JSON.stringify(marker)}, ready_timeout: ${readyTimeout} }
`;
}

describe('spin apply with a real VM', () => {
  it('boots it, sees it running, restarts it when it died, and destroy powers it off', async () => {
    const home = await testDir('spin-vm-');
    await mkdir(join(home, 'images/boot'), { recursive: true });
    await copyFile(guest.kernel, join(home, 'images/boot/vmlinuz'));
    await copyFile(guest.graceful, join(home, 'images/boot/initrd.gz'));
    const file = join(home, 'tiny.spin.yaml');
    await writeFile(file, vmPackage(guest.marker, guest.append));
    const run = (...args: string[]) => spin(args, { env: { SPIN_HOME: home } });
    pidFiles.push(join(home, 'vms/tiny/qemu.pid'));

    const applied = await run('apply', file);
    expect(applied.stderr).toBe('');
    expect(applied.code).toBe(0);
    expect(applied.stdout).toMatch(/tiny\/start succeeded in \S+: vm tiny started/);
    expect(await readFile(join(home, 'vms/tiny/console.log'), 'utf8')).toContain(guest.marker);

    const status = await run('status', 'tiny');
    expect(status.stdout).toMatch(/start\s+succeeded\s+emulation\.start\s+vm running/);
    expect((await run('apply', file)).stdout).toContain('Nothing to do: 4 commands up to date.');

    // The VM dies behind spin's back: plan calls it drift, apply starts it again.
    const pid = Number((await readFile(join(home, 'vms/tiny/qemu.pid'), 'utf8')).trim());
    process.kill(pid, 'SIGKILL');
    const planned = await run('plan', file);
    expect(planned.stdout).toMatch(/! start\s+drifted/);
    const repaired = await run('apply', file);
    expect(repaired.code).toBe(0);
    expect(repaired.stdout).toMatch(/tiny\/start succeeded/);
    expect(repaired.stdout).not.toMatch(/tiny\/disk running/);

    const destroyed = await run('destroy', 'tiny');
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toMatch(
      /tiny\/start succeeded in \S+: vm tiny stopped by ACPI powerdown/,
    );
    expect((await run('status')).stdout).toContain('No packages applied yet.');
  });

  it('a start that fails stops the qemu it began, so destroy can remove the config', async () => {
    const home = await vmHome();
    const file = join(home, 'tiny.spin.yaml');
    await writeFile(file, vmPackage('A LINE THE GUEST NEVER PRINTS', guest.append, 128, '3s'));
    const run = (...args: string[]) => spin(args, { env: { SPIN_HOME: home } });
    const pidFile = join(home, 'vms/tiny/qemu.pid');
    pidFiles.push(pidFile);

    const applied = await run('apply', file, '--output', 'plain');
    expect(applied.code).toBe(1);
    expect(applied.stdout).toMatch(/tiny\/start failed/);
    expect(existsSync(pidFile)).toBe(false);
    expect(qemusOf(home)).toEqual([]); // no qemu of this home runs
    const destroyed = await run('destroy', 'tiny', '--output', 'plain');
    expect(destroyed.code).toBe(0);
    expect(existsSync(join(home, 'vms/tiny'))).toBe(false);
  });

  it('a destroy killed while it stops the VM never deletes the disk later', async () => {
    const home = await vmHome();
    const file = join(home, 'tiny.spin.yaml');
    await writeFile(file, vmPackage(guest.marker, guest.append));
    const env = { SPIN_HOME: home };
    pidFiles.push(join(home, 'vms/tiny/qemu.pid'));
    expect((await spin(['apply', file], { env })).code).toBe(0);

    const destroy = startSpin(['destroy', 'tiny', '--output', 'plain'], { env });
    await destroy.waitFor(/tiny\/start running/);
    destroy.signal('SIGKILL');
    await destroy.done;
    // The next apply cancels what the dead destroy left and puts the package back as the file
    // says; a daemon started after that finds nothing of the destroy to run.
    const applied = await spin(['apply', file, '--output', 'plain'], { env });
    expect(applied.code).toBe(0);
    expect(applied.stderr).toMatch(/recovered from an interrupted spin destroy/);
    expect((await spin(['daemon', 'start'], { env })).code).toBe(0);
    expect((await spin(['daemon', 'stop'], { env })).code).toBe(0);
    expect(existsSync(join(home, 'images/disks/root.qcow2'))).toBe(true);
    expect(existsSync(join(home, 'vms/tiny/config.json'))).toBe(true);
    expect((await spin(['plan', file], { env })).stdout).toContain('No changes');
    expect((await spin(['destroy', 'tiny'], { env })).code).toBe(0);
  });
});

/** A temp home with the tiny guest's kernel and initramfs in its boot volume. */
async function vmHome(): Promise<string> {
  const home = await testDir('spin-vm-');
  await mkdir(join(home, 'images/boot'), { recursive: true });
  await copyFile(guest.kernel, join(home, 'images/boot/vmlinuz'));
  await copyFile(guest.graceful, join(home, 'images/boot/initrd.gz'));
  return home;
}

/** The pids of the qemu processes whose command line names this home. */
function qemusOf(home: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^[0-9]+$/.test(name))
    .filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return cmd.startsWith('qemu') && cmd.includes(home) && !stat.includes(') Z ');
      } catch {
        return false;
      }
    })
    .map(Number);
}
