// npm run guest — puts a tiny bootable guest where examples/vm.spin.yaml boots it from:
// $SPIN_HOME/images/guest/vmlinuz (Debian's cloud kernel) and initrd.cpio.gz (busybox, prints
// SPIN-TINY-VM-READY on its serial console and powers off on ACPI powerdown within a second).
// Built once from Debian packages (see tiny-guest.js), then copied; running it again is cheap.
import { copyFile, mkdir, rename } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { tinyGuest } from './tiny-guest.js';

const home = process.env['SPIN_HOME'] || join(homedir(), '.config', 'spin');
const dir = join(home, 'images', 'guest');

try {
  const guest = await tinyGuest();
  await mkdir(dir, { recursive: true });
  for (const [from, name] of [
    [guest.kernel, 'vmlinuz'],
    [guest.graceful, 'initrd.cpio.gz'],
  ]) {
    // Whole or absent: a copy interrupted halfway never takes the name.
    const temp = join(dir, `.${name}.${String(process.pid)}.tmp`);
    await copyFile(from, temp);
    await rename(temp, join(dir, name));
  }
  console.log(`guest ready in ${dir} (vmlinuz, initrd.cpio.gz)`);
  console.log('next: node bin/run.js apply examples/vm.spin.yaml');
} catch (error) {
  console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
}
