// A tiny guest to boot under qemu, built from Debian packages: the cloud kernel (`apt-get
// download` of the one real package behind `linux-image-cloud-amd64`, unpacked with `dpkg -x`)
// and busybox-static initramfs images packed with cpio. The guest prints `marker` on its serial
// console; the `graceful` initrd powers off on ACPI powerdown (button.ko + evdev.ko + busybox
// acpid) within a second, the `stubborn` one ignores it. Both load pvpanic (qemu's `-device
// pvpanic`, so that a panic is reported to qemu) and, once the marker is printed, act on their
// kernel command line: `spin.test=panic` panics the kernel (sysrq `c`), `spin.test=poweroff`
// powers the guest off, `spin.test=heartbeat` prints `heartbeat` four times, every half second,
// then falls silent. Built once per kernel package version (and `layout`, below) and kept in
// `${XDG_CACHE_HOME:-~/.cache}/spin-test/tiny-vm/`.
//
// Used by the emulation tests (test/support/tiny-vm.ts) and by `npm run guest` (scripts/guest.js),
// which puts it where the demo package boots it from.
import { execFile } from 'node:child_process';
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
import { promisify } from 'node:util';

const run = promisify(execFile);
const marker = 'SPIN-TINY-VM-READY';
const busybox = '/bin/busybox';
/** Changes when what the initrds hold changes, so that a cached guest of an older kind is rebuilt. */
const layout = 'v3';
/** The kernel modules the initrds load: ACPI power button and its event device, and pvpanic. */
const gracefulModules = ['button', 'evdev', 'pvpanic', 'pvpanic-mmio'];
const stubbornModules = ['pvpanic', 'pvpanic-mmio'];

async function onPath(tool) {
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

/** Fails with one clear message naming every missing tool. */
export async function requireVmTools() {
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
      `Booting the tiny guest needs: ${missing.join(', ')}. ` +
        'Install qemu-system-x86 qemu-utils busybox-static cpio (apt-get), as .ci/run does.',
    );
  }
}

async function kernelPackage() {
  const { stdout } = await run('apt-cache', ['depends', 'linux-image-cloud-amd64']);
  const name = /Depends:\s*(linux-image-\S+-cloud-amd64)/.exec(stdout)?.[1];
  if (name === undefined) {
    throw new Error(
      `apt-cache knows no kernel behind linux-image-cloud-amd64 (run apt-get update):\n${stdout}`,
    );
  }
  const policy = (await run('apt-cache', ['policy', name])).stdout;
  const version = /Candidate:\s*(\S+)/.exec(policy)?.[1];
  if (version === undefined || version === '(none)')
    throw new Error(`apt has no candidate for ${name}`);
  return { name, version };
}

function initScript(graceful) {
  const acpi = graceful
    ? [
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
    ...(graceful ? gracefulModules : stubbornModules).map((m) => `insmod /lib/modules/${m}.ko`),
    ...acpi,
    `echo ${marker}`,
    'case " $(cat /proc/cmdline) " in',
    '  *" spin.test=panic "*) echo c > /proc/sysrq-trigger ;;',
    '  *" spin.test=poweroff "*) poweroff -f ;;',
    '  *" spin.test=heartbeat "*) for i in 1 2 3 4; do echo heartbeat; sleep 0.5; done ;;',
    'esac',
    'while true; do sleep 3600; done',
    '',
  ].join('\n');
}

async function packInitrd(work, modules, graceful, out) {
  const root = join(work, graceful ? 'root-graceful' : 'root-stubborn');
  await mkdir(join(root, 'bin'), { recursive: true });
  await copyFile(busybox, join(root, 'bin', 'busybox'));
  await writeFile(join(root, 'init'), initScript(graceful), { mode: 0o755 });
  await mkdir(join(root, 'lib', 'modules'), { recursive: true });
  for (const name of graceful ? gracefulModules : stubbornModules)
    await copyFile(join(modules, `${name}.ko`), join(root, 'lib', 'modules', `${name}.ko`));
  if (graceful) {
    await mkdir(join(root, 'etc', 'acpi', 'PWRF'), { recursive: true });
    const action = join(root, 'etc', 'acpi', 'PWRF', '00000080');
    await writeFile(action, '#!/bin/sh\npoweroff -f\n');
    await chmod(action, 0o755);
  }
  await run(
    'sh',
    ['-c', 'find . -print0 | cpio --null -o -H newc --quiet | gzip -9 > "$1"', 'pack', out],
    { cwd: root },
  );
}

async function findModule(dir, name, work) {
  const { stdout } = await run('find', [dir, '-name', `${name}.ko*`]);
  const found = stdout.split('\n').find((line) => line !== '');
  if (found === undefined) throw new Error(`The kernel package has no ${name}.ko`);
  const plain = join(work, `${name}.ko`);
  if (found.endsWith('.ko.xz')) await run('sh', ['-c', 'xz -dc "$1" > "$2"', 'unxz', found, plain]);
  else if (found.endsWith('.ko.zst')) await run('zstd', ['-dq', found, '-o', plain]);
  else await copyFile(found, plain);
  return plain;
}

async function build(cacheDir, pkg) {
  const work = await mkdtemp(join(tmpdir(), 'spin-tiny-vm-'));
  try {
    await run('apt-get', ['download', '-q', pkg], { cwd: work });
    const deb = (await readdir(work)).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new Error(`apt-get download ${pkg} gave no .deb`);
    await run('dpkg', ['-x', join(work, deb), join(work, 'x')]);
    const vmlinuz = (await readdir(join(work, 'x', 'boot'))).find((f) => f.startsWith('vmlinuz-'));
    if (vmlinuz === undefined) throw new Error(`${pkg} has no boot/vmlinuz-*`);
    const modules = join(work, 'modules');
    await mkdir(modules);
    for (const name of gracefulModules)
      await findModule(join(work, 'x', 'lib', 'modules'), name, modules);
    const staging = join(work, 'out');
    await mkdir(staging);
    await copyFile(join(work, 'x', 'boot', vmlinuz), join(staging, 'vmlinuz'));
    await packInitrd(work, modules, true, join(staging, 'graceful.cpio.gz'));
    await packInitrd(work, modules, false, join(staging, 'stubborn.cpio.gz'));
    await mkdir(join(cacheDir, '..'), { recursive: true });
    await rename(staging, cacheDir).catch(async (error) => {
      // Another run finished first: its result is as good as ours.
      if (!(await exists(join(cacheDir, 'stubborn.cpio.gz')))) throw error;
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

async function exists(path) {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** The tiny guest's files, built on first use and cached by kernel package version. */
export async function tinyGuest() {
  await requireVmTools();
  const { name, version } = await kernelPackage();
  const cacheRoot = process.env['XDG_CACHE_HOME'] || join(homedir(), '.cache');
  const cacheDir = join(
    cacheRoot,
    'spin-test',
    'tiny-vm',
    `${name}_${version}_${layout}`.replaceAll(/[^A-Za-z0-9._+-]/g, '_'),
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
