/**
 * The tiny guest of the emulation tests: a Debian cloud kernel and busybox initramfs images,
 * built by scripts/tiny-guest.js (which `npm run guest` uses too) and cached per kernel version.
 */
import { readFile } from 'node:fs/promises';
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
