import { readFile } from 'node:fs/promises';
import { isGone, type ProcessIdentity } from '../../core/process-identity.js';
import { writeFileAtomic } from '../fs-util.js';
import type { RestartPolicy } from './restart-policy.js';
import type { VmPaths } from './vm-config.js';
import type { VmExit } from './vm-exit.js';
import type { HealthSettings } from './vm-health.js';
import type { QemuProcess } from './vm-process.js';

/** Which long-lived process supervises a VM: the daemon, `spin agent emulation`, or `spin watch`. */
export type SupervisorRole = 'daemon' | 'agent' | 'watch';

/** A supervising process: told apart from a later one with its pid by its start time. */
export interface SupervisorIdentity extends ProcessIdentity {
  role: SupervisorRole;
}

/**
 * Where a VM's supervision stands:
 *
 * ```
 *   running ──exit, restarted by policy──▶ backoff ──delay──▶ running
 *      │                                      └──attempts used up (mode fail)──▶ gave-up
 *      ├──exit, not restarted by policy──▶ exited
 *      └──spin stops it (stop, destroy, restart for a changed config)──▶ stopped
 * ```
 *
 * In mode delay, used-up attempts are a longer `backoff`, until the interval has passed.
 */
export type SupervisionState = 'running' | 'backoff' | 'exited' | 'gave-up' | 'stopped';

/**
 * What spin knows of a VM's supervision, in `vms/<id>/supervision.json`: written (atomically,
 * under the VM's lifecycle lock) by whoever starts, restarts or stops it, read by any process
 * (`spin status`, a daemon adopting the VMs of its predecessor). Times are ms since the epoch.
 */
export interface SupervisionRecord {
  format: 'spin-vm-supervision';
  version: 1;
  vm: string;
  /** The process that restarts it by policy; null when it was started with none (embedded apply). */
  supervisor: SupervisorIdentity | null;
  /** What spin wants: `stop` is written before spin stops the VM, and nothing restarts it then. */
  intent: 'run' | 'stop';
  state: SupervisionState;
  policy: RestartPolicy;
  /** The checks run while it runs, when its start has any. */
  health?: HealthSettings;
  /** The qemu of the VM's current run. */
  qemu?: QemuProcess;
  /** When that qemu was launched. */
  upSince?: number;
  /** Restarts since the start command ran. */
  restarts: number;
  /** When the restarts that count against `policy.attempts` were made (oldest first). */
  window: number[];
  lastExit?: VmExit;
  /** When the next restart is due, while in `backoff`. */
  nextRestartAt?: number;
  /** When the supervisor gave up, in `gave-up`. */
  gaveUpAt?: number;
}

/** The record of a VM, or undefined when it has none (never started by this spin) or it is unreadable. */
export async function readSupervision(paths: VmPaths): Promise<SupervisionRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(paths.supervision, 'utf8')) as Record<string, unknown>;
    return record['format'] === 'spin-vm-supervision' && record['version'] === 1
      ? (record as unknown as SupervisionRecord)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the record atomically (temp file, fsync, rename). */
export function writeSupervision(paths: VmPaths, record: SupervisionRecord): Promise<void> {
  return writeFileAtomic(paths.supervision, `${JSON.stringify(record, null, 2)}\n`);
}

/** Whether a live process supervises the VM now. */
export function isSupervised(record: SupervisionRecord): boolean {
  return record.supervisor !== null && !isGone(record.supervisor);
}
