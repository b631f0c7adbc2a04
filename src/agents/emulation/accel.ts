import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../fs-util.js';
import type { Accel } from './qemu-argv.js';

/** How the emulation agent picks its accelerator: decide, or force one. */
export type AccelChoice = 'auto' | Accel;

/**
 * The host files the decision reads. The real ones unless a caller (a test) names others, so that
 * a host of any kind can be described with plain files.
 */
export interface HostFiles {
  /** `/proc/cpuinfo`: its `flags` say whether the CPU offers hardware virtualization. */
  cpuinfo: string;
  /** `/dev/kvm`: KVM is out of the question where it cannot be opened for reading and writing. */
  kvm: string;
  /** `/proc/sys/kernel/random/boot_id`: a probe's answer holds until the host boots again. */
  bootId: string;
}

/** The files of this host. */
export const hostFiles: HostFiles = {
  cpuinfo: '/proc/cpuinfo',
  kvm: '/dev/kvm',
  bootId: '/proc/sys/kernel/random/boot_id',
};

/**
 * Why the accelerator is what it is: forced by the caller; no usable `/dev/kvm`; a CPU without
 * the `vmx` (Intel) or `svm` (AMD) flag, where KVM runs no ordinary guest even when the device
 * exists (a paravirtual KVM such as `kvm_pvm`); the answer of a probe made earlier in this host
 * boot; or a probe made now.
 */
export type AccelReason = 'forced' | 'no-kvm-device' | 'no-virt-flag' | 'remembered' | 'probed';

/** An accelerator and why. */
export interface AccelDecision {
  accel: Accel;
  reason: AccelReason;
}

const probeMs = 3000;
const bootMarkers = /No bootable device|Booting from|enter handle_18/;
const probeFile = '.accel-probe.json';

/**
 * Runs the firmware alone under KVM and waits for it to reach its boot menu. Where `/dev/kvm` exists
 * but does not work (nested virtualization on some hosts), qemu starts and then hangs in the
 * firmware; the probe sees no boot message within a few seconds and answers false.
 */
async function kvmBootsFirmware(): Promise<boolean> {
  const child = spawn(
    'qemu-system-x86_64',
    ['-accel', 'kvm', '-machine', 'pc', '-nodefaults', '-no-user-config', '-display', 'none', '-m', '32',
     '-chardev', 'stdio,id=dbg', '-device', 'isa-debugcon,iobase=0x402,chardev=dbg', '-no-reboot'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  ); // prettier-ignore
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => {
      resolve();
    });
  });
  let seen = '';
  const booted = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      resolve(false);
    }, probeMs);
    child.once('error', () => {
      clearTimeout(timer);
      resolve(false);
    });
    child.stdout.on('data', (chunk: Buffer) => {
      seen = (seen + chunk.toString('latin1')).slice(-4096);
      if (bootMarkers.test(seen)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(bootMarkers.test(seen));
    });
  });
  child.kill('SIGKILL');
  if (child.pid !== undefined) await exited;
  return booted;
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return fallback;
  }
}

/** Whether a `flags` line of cpuinfo names `vmx` or `svm`. */
export function cpuCanVirtualize(cpuinfo: string): boolean {
  return /^flags\s*:.*\b(?:vmx|svm)\b/m.test(cpuinfo);
}

async function decide(host: HostFiles, cacheDir: string): Promise<AccelDecision> {
  try {
    await access(host.kvm, constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: 'no-kvm-device' };
  }
  if (!cpuCanVirtualize(await readOr(host.cpuinfo, '')))
    return { accel: 'tcg', reason: 'no-virt-flag' };
  const cacheFile = join(cacheDir, probeFile);
  const boot = (await readOr(host.bootId, 'unknown')).trim();
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as {
      bootId?: string;
      accel?: string;
    };
    if (cached.bootId === boot && (cached.accel === 'kvm' || cached.accel === 'tcg'))
      return { accel: cached.accel, reason: 'remembered' };
  } catch {
    // No answer yet, or an unreadable one: probe again.
  }
  const accel: Accel = (await kvmBootsFirmware()) ? 'kvm' : 'tcg';
  await mkdir(cacheDir, { recursive: true });
  await writeFileAtomic(cacheFile, `${JSON.stringify({ bootId: boot, accel })}\n`);
  return { accel, reason: 'probed' };
}

/**
 * Decides the accelerator VMs run with. A forced `kvm` or `tcg` is taken as given. `auto` uses KVM
 * only where it really works, and decides without running anything where the host says so plainly
 * (no usable `/dev/kvm`, or a CPU without `vmx`/`svm`). Otherwise it runs the firmware alone under
 * KVM for up to a few seconds (a device node that exists but hangs is common in nested set-ups),
 * and remembers the answer in `cacheDir` for the rest of the host's boot. The decision of each
 * `cacheDir` is made once per resolver; `warm` starts it early, off the path of the first start.
 */
export class AccelResolver {
  readonly #choice: AccelChoice;
  readonly #host: HostFiles;
  readonly #decisions = new Map<string, Promise<AccelDecision>>();

  constructor(choice: AccelChoice = 'auto', host: HostFiles = hostFiles) {
    this.#choice = choice;
    this.#host = host;
  }

  /** The accelerator for VMs whose probe answer is kept in `cacheDir`; never rejects. */
  resolve(cacheDir: string): Promise<AccelDecision> {
    if (this.#choice !== 'auto') return Promise.resolve({ accel: this.#choice, reason: 'forced' });
    let decision = this.#decisions.get(cacheDir);
    if (decision === undefined) {
      decision = decide(this.#host, cacheDir).catch(() => ({
        accel: 'tcg' as const,
        reason: 'probed' as const,
      }));
      this.#decisions.set(cacheDir, decision);
    }
    return decision;
  }

  /** Starts deciding for `cacheDir` without waiting for the answer. */
  warm(cacheDir: string): void {
    void this.resolve(cacheDir);
  }
}
