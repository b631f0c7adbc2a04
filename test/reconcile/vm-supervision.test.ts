import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killHard, runDaemonProcess } from '../support/cli-process.js';
import { fileUntil, jsonLines } from '../support/file-until.js';
import { alive } from '../support/process-alive.js';
import { spin, startSpin, testDir } from '../support/spin-cli.js';
import { tinyVm, type TinyVm } from '../support/tiny-vm.js';

let guest: TinyVm;
beforeAll(async () => {
  guest = await tinyVm();
});

/** Daemons and VMs a failed test may have left running: ended so nothing outlives the run. */
const daemons: ChildProcess[] = [];
const pidFiles: string[] = [];
afterEach(async () => {
  for (const daemon of daemons.splice(0)) await killHard(daemon);
  for (const file of pidFiles.splice(0)) {
    const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
    if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
});

/** `spin daemon run` with its built-in agents; resolves once it listens. */
async function startDaemon(home: string): Promise<ChildProcess> {
  const daemon = await runDaemonProcess(home, { agents: true });
  daemons.push(daemon);
  return daemon;
}

/** A home with the tiny guest's kernel and initramfs in its boot volume. */
async function vmHome(): Promise<string> {
  const home = await testDir('spin-sup-');
  await mkdir(join(home, 'images/boot'), { recursive: true });
  await copyFile(guest.kernel, join(home, 'images/boot/vmlinuz'));
  await copyFile(guest.graceful, join(home, 'images/boot/initrd.gz'));
  return home;
}

/** A package of one VM on its own disk, restarted after 200 ms by default. */
function vmPackage(name: string, options: { append?: string; restart?: string } = {}): string {
  return `package: ${name}
defaults: { timeout: 2m }
commands:
  disks: { resource: storage, action: add_volume, params: { path: ${name} } }
  disk:
    resource: storage
    action: create_image
    needs: [disks]
    params: { volume: ${name}, image: root.raw, image_size: 1 }
  config:
    resource: emulation
    action: write_config
    needs: [disk]
    params:
      id: ${name}
      vm:
        name: ${name}
        cpus: 1
        memory: 128
        images: [{ volume: ${name}, path: root.raw }]
        kernel: boot/vmlinuz
        initrd: boot/initrd.gz
        append: ${JSON.stringify(options.append ?? guest.append)}
  start:
    resource: emulation
    action: start
    needs: [config]
    params:
      id: ${name}
      ready_when: ${JSON.stringify(guest.marker)}
      ready_timeout: 90s
      restart: ${options.restart ?? '{ delay: 200ms }'}
`;
}

/** The pids of the qemu processes whose command line names `pidFile`. */
function qemusOf(pidFile: string): number[] {
  return readdirSync('/proc')
    .filter((name) => /^[0-9]+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${String(pid)}/cmdline`, 'utf8');
        return cmd.startsWith('qemu') && cmd.includes(pidFile) && alive(pid);
      } catch {
        return false;
      }
    });
}

/** The supervisor's events of the audit log, once `accept` finds what it waits for among them. */
function auditUntil(
  home: string,
  accept: (events: Record<string, unknown>[]) => boolean,
): Promise<Record<string, unknown>[]> {
  return fileUntil(join(home, 'audit.ndjson'), (text) => {
    const events = jsonLines(text).filter((e) => e['type'] === 'vm');
    return accept(events) ? events : undefined;
  });
}

describe('VM supervision through the daemon (real qemu, the built binary)', () => {
  it('adopts its VMs after a kill -9, never runs a second qemu, restarts a killed one, and destroy stops them', async () => {
    const home = await vmHome();
    const env = { SPIN_HOME: home };
    const file = join(home, 'one.spin.yaml');
    await writeFile(file, vmPackage('one'));
    const pidFile = join(home, 'vms/one/qemu.pid');
    pidFiles.push(pidFile);

    const first = await startDaemon(home);
    const applied = await spin(['apply', file, '--output', 'plain'], { env });
    expect(applied.code).toBe(0);
    const status = await spin(['status', 'one'], { env });
    expect(status.stdout).toMatch(/start\s+succeeded\s+emulation\.start\s+vm running, up since /);
    expect(status.stdout).not.toContain('not supervised');

    await killHard(first);
    const orphaned = await spin(['status', 'one'], { env });
    expect(orphaned.stdout).toMatch(
      /vm running, not supervised: its supervisor \(daemon, pid \d+\) is gone/,
    );

    const second = await startDaemon(home);
    const adopted = await auditUntil(home, (events) =>
      events.some((e) => e['event'] === 'adopted'),
    );
    expect(adopted.find((e) => e['event'] === 'adopted')).toMatchObject({
      vm: 'one',
      supervisor: { pid: second.pid, role: 'daemon' },
    });
    const [qemu] = qemusOf(pidFile);
    expect(qemusOf(pidFile)).toHaveLength(1);
    // An apply with the daemon back finds the VM running: nothing starts a second qemu.
    const again = await spin(['apply', file, '--output', 'plain'], { env });
    expect(again.stdout).toContain('Nothing to do');
    expect(qemusOf(pidFile)).toEqual([qemu]);

    // Supervised again: killed, it comes back.
    process.kill(qemu!, 'SIGKILL');
    const restarted = await auditUntil(home, (events) =>
      events.some((e) => e['event'] === 'restarted'),
    );
    const back = restarted.find((e) => e['event'] === 'restarted');
    expect(back).toMatchObject({ vm: 'one', restarts: 1, supervisor: { pid: second.pid } });
    expect(qemusOf(pidFile)).toEqual([back!['pid']]);
    const shown = await spin(['status', 'one', '--json'], { env });
    const start = (
      JSON.parse(shown.stdout) as {
        packages: { commands: { id: string; supervision?: Record<string, unknown> }[] }[];
      }
    ).packages[0]?.commands.find((c) => c.id === 'start');
    expect(start?.supervision).toMatchObject({
      supervised: true,
      state: 'running',
      restarts: 1,
      lastExit: { cause: 'died' },
      supervisor: { role: 'daemon', pid: second.pid, gone: false },
    });

    // Once the guest is up again, the ladder stops it (it powers off on ACPI powerdown), and
    // nothing restarts it.
    await fileUntil(join(home, 'vms/one/console.log'), (text) =>
      text.includes(guest.marker) ? true : undefined,
    );
    const destroyed = await spin(['destroy', 'one', '--output', 'plain'], { env });
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toMatch(
      /one\/start succeeded in \S+: vm one stopped by ACPI powerdown/,
    );
    expect(qemusOf(pidFile)).toEqual([]);
    const events = jsonLines(await readFile(join(home, 'audit.ndjson'), 'utf8'));
    expect(events.filter((e) => e['type'] === 'vm').map((e) => e['event'])).toEqual([
      'adopted',
      'exited',
      'restarting',
      'restarted',
    ]);
  });

  it('gives up on a guest that keeps panicking: status shows the start failed and why', async () => {
    const home = await vmHome();
    const env = { SPIN_HOME: home };
    const file = join(home, 'panics.spin.yaml');
    await writeFile(
      file,
      vmPackage('panics', {
        append: `${guest.append} spin.test=panic`,
        restart: '{ attempts: 1, interval: 10m, delay: 200ms }',
      }),
    );
    pidFiles.push(join(home, 'vms/panics/qemu.pid'));
    await startDaemon(home);
    expect((await spin(['apply', file, '--output', 'plain'], { env })).code).toBe(0);
    await auditUntil(home, (events) => events.some((e) => e['event'] === 'gave-up'));
    const status = await spin(['status', 'panics'], { env });
    expect(status.stdout).toMatch(
      /start\s+failed\s+emulation\.start\s+vm stopped, restarts 1, last exit: the guest panicked at \S+\s+the VM's supervisor gave up: it ended again after 1 restart \(at most 1 in 10m00s\); last exit: panic \[gave_up\]/,
    );
    // The next apply starts it again, as for any VM that does not run.
    expect((await spin(['plan', file], { env })).stdout).toMatch(/! start\s+drifted/);
  });

  it('says that a VM an apply started without a daemon is not supervised', async () => {
    const home = await vmHome();
    const env = { SPIN_HOME: home };
    const file = join(home, 'alone.spin.yaml');
    await writeFile(file, vmPackage('alone'));
    pidFiles.push(join(home, 'vms/alone/qemu.pid'));
    expect((await spin(['apply', file, '--output', 'plain'], { env })).code).toBe(0);
    const status = await spin(['status', 'alone'], { env });
    expect(status.stdout).toMatch(/vm running, not supervised: no daemon, up since /);
    expect((await spin(['destroy', 'alone'], { env })).code).toBe(0);
  });

  it('spin watch supervises the VMs it starts with no daemon, for as long as it runs', async () => {
    const home = await vmHome();
    const env = { SPIN_HOME: home };
    const dir = join(home, 'packages');
    await mkdir(dir);
    await writeFile(join(dir, 'watched.spin.yaml'), vmPackage('watched'));
    const pidFile = join(home, 'vms/watched/qemu.pid');
    pidFiles.push(pidFile);
    const watch = startSpin(['watch', dir, '--output', 'plain'], { env });
    try {
      await watch.waitFor(/watched: apply complete/);
      expect((await spin(['status', 'watched'], { env })).stdout).toMatch(/vm running, up since /);
      const [qemu] = qemusOf(pidFile);
      process.kill(qemu!, 'SIGKILL');
      const events = await auditUntil(home, (all) => all.some((e) => e['event'] === 'restarted'));
      expect(events.find((e) => e['event'] === 'restarted')).toMatchObject({
        vm: 'watched',
        supervisor: { pid: watch.pid, role: 'watch' },
      });
      await fileUntil(join(home, 'vms/watched/console.log'), (text) =>
        text.includes(guest.marker) ? true : undefined,
      );
    } finally {
      watch.signal('SIGTERM');
      await watch.done;
    }
    // The watch has ended: the VM runs on, and says that nobody supervises it now.
    expect((await spin(['status', 'watched'], { env })).stdout).toMatch(
      /vm running, not supervised: its supervisor \(watch, pid \d+\) is gone/,
    );
    const destroyed = await spin(['destroy', 'watched', '--output', 'plain'], { env });
    expect(destroyed.stdout).toContain('stopped by ACPI powerdown');
  });
});
