import { constants } from 'node:fs';
import {
  access,
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';

/**
 * A tiny guest for emulation tests, built at test time from Debian packages: the cloud kernel
 * (`apt-get download` of the one real package behind `linux-image-cloud-amd64`, unpacked with
 * `dpkg -x`) and busybox-static initramfs images packed with cpio. The guest echoes `marker` on
 * its serial console; the `graceful` initrd powers off on ACPI powerdown (button.ko + evdev.ko +
 * busybox acpid), the `stubborn` one ignores it. Built once per kernel package version and kept in
 * `${XDG_CACHE_HOME:-~/.cache}/spin-test/tiny-vm/`.
 */
export interface TinyVm {
  kernel: string;
  graceful: string;
  stubborn: string;
  marker: string;
  append: string;
}

const marker = 'SPIN-TINY-VM-READY';
const busybox = '/bin/busybox';

async function onPath(tool: string): Promise<boolean> {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    try {
      await access(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      // not in this directory
    }
  }
  return false;
}

/** Fails with one clear message naming every missing tool, rather than skipping tests. */
export async function requireVmTools(): Promise<void> {
  const tools = ['qemu-system-x86_64', 'qemu-img', 'apt-cache', 'apt-get', 'dpkg', 'cpio', 'gzip'];
  const missing = [];
  for (const tool of tools) if (!(await onPath(tool))) missing.push(tool);
  try {
    await access(busybox, constants.X_OK);
  } catch {
    missing.push(`${busybox} (busybox-static)`);
  }
  if (missing.length > 0) {
    throw new Error(
      `The emulation tests boot a real VM and need: ${missing.join(', ')}. ` +
        'Install qemu-system-x86 qemu-utils busybox-static cpio (apt-get), as .ci/run does.',
    );
  }
}

async function kernelPackage(): Promise<{ name: string; version: string }> {
  const { stdout } = await execa('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const name = /Depends:\s*(linux-image-\S+-cloud-amd64)/.exec(stdout)?.[1];
  if (name === undefined) {
    throw new Error(
      `apt-cache knows no kernel behind linux-image-cloud-amd64 (run apt-get update):\n${stdout}`,
    );
  }
  const policy = (await execa('apt-cache', ['policy', name])).stdout;
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (version === undefined || version === '(none)')
    throw new Error(`apt has no candidate for ${name}`);
  return { name, version };
}

function initScript(graceful: boolean): string {
  const acpi = graceful
    ? [
        'insmod /lib/modules/button.ko',
        'insmod /lib/modules/evdev.ko',
        // The marker must mean "powerdown will be handled": wait for the power button's event
        // device, then until acpid holds it open.
        "pb=$(grep -l 'Power Button' /sys/class/input/input*/name | head -n 1)",
        'pb=${pb%/name}',
        'until ev=$(ls $pb | grep ^event) && [ -e /dev/input/$ev ]; do sleep 0.05; done',
        'acpid -f &',
        'until ls -l /proc/$!/fd | grep -q "input/$ev"; do sleep 0.05; done',
      ]
    : ['echo ignoring powerdown'];
  return [
    '#!/bin/busybox sh',
    '/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /var/log /var/run',
    '/bin/busybox --install -s',
    'mount -t proc proc /proc',
    'mount -t sysfs sysfs /sys',
    'mount -t devtmpfs devtmpfs /dev',
    ...acpi,
    `echo ${marker}`,
    'while true; do sleep 3600; done',
    '',
  ].join('\n');
}

async function packInitrd(
  work: string,
  modules: string,
  graceful: boolean,
  out: string,
): Promise<void> {
  const root = join(work, graceful ? 'root-graceful' : 'root-stubborn');
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await writeFile(join(root, 'init'), initScript(graceful), { mode: 0o755 });
  if (graceful) {
    await mkdir(join(root, 'lib', 'modules'), { recursive: true });
    for (const ko of ['button.ko', 'evdev.ko'])
      await copyFile(join(modules, ko), join(root, 'lib', 'modules', ko));
    await mkdir(join(root, 'etc', 'acpi', 'PWRF'), { recursive: true });
    const action = join(root, 'etc', 'acpi', 'PWRF', '00000080');
    await writeFile(action, '#!/bin/sh\npoweroff -f\n');
    await chmod(action, 0o755);
  }
  await execa(
    'sh',
    ['-c', 'find . -print0 | cpio --null -o -H newc --quiet | gzip -9 > "$1"', 'pack', out],
    {
      cwd: root,
    },
  );
}

async function findModule(dir: string, name: string, work: string): Promise<string> {
  const { stdout } = await execa('find', [dir, '-name', `${name}.ko*`]);
  const found = stdout.split('\n').find((line) => line !== '');
  if (found === undefined) throw new Error(`The kernel package has no ${name}.ko`);
  const plain = join(work, `${name}.ko`);
  if (found.endsWith('.ko.xz'))
    await execa('sh', ['-c', 'xz -dc "$1" > "$2"', 'unxz', found, plain]);
  else if (found.endsWith('.ko.zst')) await execa('zstd', ['-dq', found, '-o', plain]);
  else await copyFile(found, plain);
  return plain;
}

async function build(cacheDir: string, pkg: string): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'spin-tiny-vm-'));
  try {
    await execa('apt-get', ['download', '-q', pkg], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${pkg} gave no .deb`);
    await execa('dpkg', ['-x', join(work, deb), join(work, 'x')]);
    const vmlinuz = (await readdir(join(work, 'x', 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (vmlinuz === undefined) throw new Error(`${pkg} has no boot/vmlinuz-*`);
    const modules = join(work, 'modules');
    await mkdir(modules);
    for (const name of ['button', 'evdev'])
      await findModule(join(work, 'x', 'lib', 'modules'), name, modules);
    const staging = join(work, 'out');
    await mkdir(staging);
    await copyFile(join(work, 'x', 'boot', vmlinuz), join(staging, 'vmlinuz'));
    await packInitrd(work, modules, true, join(staging, 'graceful.cpio.gz'));
    await packInitrd(work, modules, false, join(staging, 'stubborn.cpio.gz'));
    await mkdir(join(cacheDir, '..'), { recursive: true });
    await rename(staging, cacheDir).catch(async (error: unknown) => {
      // Another run finished first: its result is as good as ours.
      if (!(await exists(join(cacheDir, 'stubborn.cpio.gz')))) throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The tiny guest's files, built on first use and cached by kernel package version. */
export async function tinyVm(): Promise<TinyVm> {
  await requireVmTools();
  const { name, version } = await kernelPackage();
  const cacheRoot = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  const cacheDir = join(
    cacheRoot,
    'spin-test',
    'tiny-vm',
    `${name}_${version}`.replaceAll(/[^A-Za-z0-9._+-]/g, '_'),
  );
  if (!(await exists(join(cacheDir, 'stubborn.cpio.gz')))) await build(cacheDir, name);
  return {
    kernel: join(cacheDir, 'vmlinuz'),
    graceful: join(cacheDir, 'graceful.cpio.gz'),
    stubborn: join(cacheDir, 'stubborn.cpio.gz'),
    marker,
    append: 'console=ttyS0 quiet panic=-1',
  };
}
