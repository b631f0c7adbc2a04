import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { beforeEach, expect, it, onTestFinished, vi } from 'vitest';
import type { AccelChoice } from '../../src/agents/emulation/accel.js';
import type { Accel } from '../../src/agents/emulation/qemu-argv.js';
import { testDir } from '../support/spin-cli.js';

/** accel.ts remembers its answer per process: each test loads it afresh. */
let resolveAccel: (choice: AccelChoice, cacheDir: string) => Promise<Accel>;
beforeEach(async () => {
  vi.resetModules();
  ({ resolveAccel } = await import('../../src/agents/emulation/accel.js'));
});

/**
 * Runs the firmware alone under `accel` until it tries to boot, and returns what it logged on its
 * debug port. Fails if qemu cannot run with that accelerator. SeaBIOS logs "Running on KVM" when
 * it finds itself under KVM: the guest's own account of the accelerator, found independently of
 * spin's probe.
 */
function firmwareLog(accel: Accel): Promise<string> {
  const child = spawn(
    'qemu-system-x86_64',
    ['-accel', accel, '-machine', 'pc', '-nodefaults', '-no-user-config', '-display', 'none',
     '-m', '32', '-chardev', 'stdio,id=dbg', '-device', 'isa-debugcon,iobase=0x402,chardev=dbg',
     '-no-reboot'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  ); // prettier-ignore
  onTestFinished(() => {
    child.kill('SIGKILL');
  });
  let log = '';
  let stderr = '';
  return new Promise((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.stdout.on('data', (chunk: Buffer) => {
      log += chunk.toString('latin1');
      if (/Booting from|No bootable device/.test(log)) resolve(log);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      reject(
        new Error(
          `qemu -accel ${accel} exited (${String(code)}) before its firmware booted:\n${stderr}\n${log}`,
        ),
      );
    });
  });
}

/** Puts a fake `qemu-system-x86_64` first on PATH for this test; returns the file of its runs. */
async function fakeQemuOnPath(): Promise<string> {
  const dir = await testDir('spin-accel-bin-');
  const runs = join(dir, 'runs');
  // Were it run, it would look like a firmware booting fine under KVM.
  await writeFile(
    join(dir, 'qemu-system-x86_64'),
    `#!/bin/sh\necho "$*" >> '${runs}'\necho 'Booting from Hard Disk...'\n`,
  );
  await chmod(join(dir, 'qemu-system-x86_64'), 0o755);
  const path = process.env['PATH'];
  process.env['PATH'] = `${dir}${delimiter}${path ?? ''}`;
  onTestFinished(() => {
    process.env['PATH'] = path;
  });
  return runs;
}

it('uses a forced accelerator as given', async () => {
  expect(await resolveAccel('tcg', '/nonexistent')).toBe('tcg');
  expect(await resolveAccel('kvm', '/nonexistent')).toBe('kvm');
});

it('auto picks an accelerator qemu really runs with, as the guest firmware confirms', async () => {
  const accel = await resolveAccel('auto', await testDir('spin-accel-'));
  const log = await firmwareLog(accel);
  expect({ accel, firmwareSaysKvm: log.includes('Running on KVM') }).toEqual({
    accel,
    firmwareSaysKvm: accel === 'kvm',
  });
});

it('auto takes the answer remembered for this boot as is, without running qemu', async () => {
  const dir = await testDir('spin-accel-');
  const bootId = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  await writeFile(join(dir, '.accel-probe.json'), JSON.stringify({ bootId, accel: 'tcg' }));
  const runs = await fakeQemuOnPath();
  // A probe would run the fake qemu, which boots "fine" and so would answer kvm.
  expect(await resolveAccel('auto', dir)).toBe('tcg');
  expect(existsSync(runs)).toBe(false);
});
