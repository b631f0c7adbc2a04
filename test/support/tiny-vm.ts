/**
 * The tiny guest of the emulation tests: a Debian cloud kernel and busybox initramfs images,
 * built by scripts/tiny-guest.js (which `npm run guest` uses too) and cached per kernel version.
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { requireVmTools, tinyGuest, type TinyGuest } from '../../scripts/tiny-guest.js';

export type TinyVm = TinyGuest;
export { requireVmTools };
export const tinyVm = tinyGuest;

/**
 * The pid files of the VMs a test file starts: after each test, the qemu each names is killed, so
 * that a failed test leaves no VM running. Call once, at the top level of the file.
 */
export function endVmsAfterEach(): string[] {
  const pidFiles: string[] = [];
  afterEach(async () => {
    for (const file of pidFiles.splice(0)) {
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (pid > 1) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone, as it should be
        }
      }
    }
  });
  return pidFiles;
}

/**
 * A package of one VM `tiny` booting the tiny guest (its kernel and graceful initramfs copied into
 * `home`'s images root), started with `ready_when` on its marker: written to
 * `home/tiny.spin.yaml`, whose path it returns. The kernel is not quiet, so its console fills in
 * as it boots.
 */
export async function tinyVmPackage(home: string, guest: TinyVm): Promise<string> {
  await mkdir(join(home, 'images/boot'), { recursive: true });
  await copyFile(guest.kernel, join(home, 'images/boot/vmlinuz'));
  await copyFile(guest.graceful, join(home, 'images/boot/initrd.gz'));
  const file = join(home, 'tiny.spin.yaml');
  await writeFile(
    file,
    `package: tiny
defaults: { timeout: 2m }
commands:
  config:
    resource: emulation
    action: write_config
    params:
      id: tiny
      vm: { name: tiny, cpus: 1, memory: 128, images: [], kernel: boot/vmlinuz, initrd: boot/initrd.gz, append: ${JSON.stringify(guest.append.replace(' quiet', ''))} }
  start:
    resource: emulation
    action: start
    needs: [config]
    params: { id: tiny, ready_when: ${JSON.stringify(guest.marker)}, ready_timeout: 90s }
`,
  );
  return file;
}
