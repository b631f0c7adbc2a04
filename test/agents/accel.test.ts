import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { expect, it, onTestFinished } from 'vitest';
import { AccelResolver, cpuCanVirtualize, hostFiles } from '../../src/agents/emulation/accel.js';
import type { Accel } from '../../src/agents/emulation/qemu-argv.js';
import { describedHost } from '../support/described-host.js';
import { fileAppears } from '../support/file-appears.js';
import { testDir } from '../support/spin-cli.js';

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

it('uses a forced accelerator as given, without looking at the host', async () => {
  const runs = await fakeQemuOnPath();
  expect(await new AccelResolver('tcg').resolve('/nonexistent')).toEqual({
    accel: 'tcg',
    reason: 'forced',
  });
  const host = await describedHost('');
  expect(await new AccelResolver('kvm', host).resolve('/nonexistent')).toEqual({
    accel: 'kvm',
    reason: 'forced',
  });
  expect(existsSync(runs)).toBe(false);
});

it('reads hardware virtualization from the flags of cpuinfo', () => {
  expect(cpuCanVirtualize('flags\t\t: fpu vmx sse\n')).toBe(true);
  expect(cpuCanVirtualize('flags\t\t: fpu svm sse\n')).toBe(true);
  expect(cpuCanVirtualize('flags\t\t: fpu hypervisor sse\nvmx flags\t: ept\n')).toBe(false);
  expect(cpuCanVirtualize('')).toBe(false);
});

it('auto picks an accelerator qemu really runs with, as the guest firmware confirms', async () => {
  const { accel } = await new AccelResolver('auto').resolve(await testDir('spin-accel-'));
  const log = await firmwareLog(accel);
  expect({ accel, firmwareSaysKvm: log.includes('Running on KVM') }).toEqual({
    accel,
    firmwareSaysKvm: accel === 'kvm',
  });
});

it('auto answers tcg without running qemu where /dev/kvm opens but the CPU has no vmx or svm', async () => {
  const dir = await testDir('spin-accel-');
  const runs = await fakeQemuOnPath();
  const host = await describedHost('');
  // A probe would run the fake qemu, which boots "fine" and so would answer kvm.
  expect(await new AccelResolver('auto', host).resolve(dir)).toEqual({
    accel: 'tcg',
    reason: 'no-virt-flag',
  });
  expect(existsSync(runs)).toBe(false);
  expect(existsSync(join(dir, '.accel-probe.json'))).toBe(false);
});

it('auto answers tcg without running qemu where no KVM device opens', async () => {
  const runs = await fakeQemuOnPath();
  const host = { ...(await describedHost('vmx')), kvm: '/nonexistent/kvm' };
  expect(await new AccelResolver('auto', host).resolve(await testDir('spin-accel-'))).toEqual({
    accel: 'tcg',
    reason: 'no-kvm-device',
  });
  expect(existsSync(runs)).toBe(false);
});

it('auto probes where the CPU has vmx, and its answer is what the firmware confirms', async () => {
  const dir = await testDir('spin-accel-');
  const host = await describedHost('vmx');
  const { accel, reason } = await new AccelResolver('auto', host).resolve(dir);
  expect(reason).toBe('probed');
  const bootId = (await readFile(hostFiles.bootId, 'utf8')).trim();
  expect(JSON.parse(await readFile(join(dir, '.accel-probe.json'), 'utf8'))).toEqual({
    bootId,
    accel,
  });
  const log = await firmwareLog(accel);
  expect(log.includes('Running on KVM')).toBe(accel === 'kvm');
});

it('auto takes the answer remembered for this boot as is, without running qemu', async () => {
  const dir = await testDir('spin-accel-');
  const bootId = (await readFile(hostFiles.bootId, 'utf8')).trim();
  await writeFile(join(dir, '.accel-probe.json'), JSON.stringify({ bootId, accel: 'tcg' }));
  const runs = await fakeQemuOnPath();
  // A probe would run the fake qemu, which boots "fine" and so would answer kvm.
  expect(await new AccelResolver('auto', await describedHost('svm')).resolve(dir)).toEqual({
    accel: 'tcg',
    reason: 'remembered',
  });
  expect(existsSync(runs)).toBe(false);
});

it('warm decides in the background, before anything asks', async () => {
  const dir = await testDir('spin-accel-');
  const runs = await fakeQemuOnPath();
  const resolver = new AccelResolver('auto', await describedHost('vmx'));
  resolver.warm(dir);
  // The fake qemu "boots", so the probe answers kvm and remembers it: no start asked for it.
  expect(JSON.parse(await fileAppears(join(dir, '.accel-probe.json')))).toMatchObject({
    accel: 'kvm',
  });
  expect((await readFile(runs, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
  expect(await resolver.resolve(dir)).toEqual({ accel: 'kvm', reason: 'probed' });
  expect((await readFile(runs, 'utf8')).split('\n').filter(Boolean)).toHaveLength(1);
});
