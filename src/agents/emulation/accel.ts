import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadExeca } from '../load-execa.js';
import { writeFileAtomic } from '../fs-util.js';
import type { Accel } from './qemu-argv.js';

/** How the emulation agent picks its accelerator: probe, or force one. */
export type AccelChoice = 'auto' | Accel;

const probeMs = 3000;
const bootMarkers = /No bootable device|Booting from|enter handle_18/;
let memo: Promise<Accel> | undefined;

async function bootId(): Promise<string> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim();
  } catch {
    return 'unknown';
  }
}

/**
 * Runs the firmware alone under KVM and waits for it to reach its boot menu. Where `/dev/kvm` exists
 * but does not work (nested virtualization on some hosts), qemu starts and then hangs in the
 * firmware; the probe sees no boot message within a few seconds and answers false.
 */
async function kvmBootsFirmware(): Promise<boolean> {
  const child = (await loadExeca())(
    'qemu-system-x86_64',
    ['-accel', 'kvm', '-machine', 'pc', '-nodefaults', '-no-user-config', '-display', 'none', '-m', '32',
     '-chardev', 'stdio,id=dbg', '-device', 'isa-debugcon,iobase=0x402,chardev=dbg', '-no-reboot'],
    { stdin: 'ignore', buffer: false, reject: false, forceKillAfterDelay: 500 },
  ); // prettier-ignore
  let seen = '';
  const booted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, probeMs);
    child.stdout.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString('latin1')).slice(-4096);
      if (bootMarkers.test(seen)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void child.then(() => {
      clearTimeout(timer);
      resolve(bootMarkers.test(seen));
    });
  });
  child.kill('SIGKILL');
  await child;
  return booted;
}

async function probe(cacheDir: string): Promise<Accel> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return 'tcg';
  }
  const cacheFile = join(cacheDir, '.accel-probe.json');
  const boot = await bootId();
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as {
      bootId?: string;
      accel?: string;
    };
    if (cached.bootId === boot && (cached.accel === 'kvm' || cached.accel === 'tcg'))
      return cached.accel;
  } catch {
    // No cache yet, or an unreadable one: probe again.
  }
  const accel: Accel = (await kvmBootsFirmware()) ? 'kvm' : 'tcg';
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(cacheFile, `${JSON.stringify({ bootId: boot, accel })}\n`);
  return accel;
}

/**
 * The accelerator to run VMs with. `auto` uses KVM only where it really works: `/dev/kvm` must be
 * usable and a firmware-only boot under KVM must make progress (a device node that exists but
 * hangs is common in nested setups). The answer is remembered per process and, per host boot, in
 * `cacheDir`, so the probe's few seconds are paid once.
 */
export function resolveAccel(choice: AccelChoice, cacheDir: string): Promise<Accel> {
  if (choice !== 'auto') return Promise.resolve(choice);
  memo ??= probe(cacheDir).catch(() => 'tcg' as const);
  return memo;
}
