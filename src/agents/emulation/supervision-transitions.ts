import {
  decideRestart,
  restartsAfter,
  restartsInWindow,
  type RestartPolicy,
} from './restart-policy.js';
import type { SupervisionRecord, SupervisorIdentity } from './supervision-record.js';
import type { HealthSettings } from './vm-health.js';
import type { VmExit } from './vm-exit.js';
import type { QemuProcess } from './vm-process.js';

/**
 * The changes of a VM's supervision record, as pure functions of the record before and what
 * happened (the supervisor does the reading, locking and writing): see `SupervisionState`.
 */

/** What a start asks of its VM's supervision: its `restart` policy and `health` checks. */
export interface SupervisionSettings {
  policy: RestartPolicy;
  health?: HealthSettings | undefined;
}

/** The record without the times of a state it leaves (a restart due, a give-up). */
function settled(record: SupervisionRecord): SupervisionRecord {
  const { nextRestartAt, gaveUpAt, ...rest } = record;
  return rest;
}

function withSettings(record: SupervisionRecord, settings: SupervisionSettings): SupervisionRecord {
  const { health, ...rest } = record;
  return settings.health === undefined
    ? { ...rest, policy: settings.policy }
    : { ...rest, policy: settings.policy, health: settings.health };
}

/** The record of a VM a start just launched: running, no restarts yet. */
export function launched(
  vm: string,
  supervisor: SupervisorIdentity | null,
  settings: SupervisionSettings,
  qemu: QemuProcess,
  now: number,
): SupervisionRecord {
  const record: SupervisionRecord = {
    format: 'spin-vm-supervision',
    version: 1,
    vm,
    supervisor,
    intent: 'run',
    state: 'running',
    policy: settings.policy,
    qemu,
    upSince: now,
    restarts: 0,
    window: [],
  };
  return withSettings(record, settings);
}

/**
 * The record of a VM a start found running on its config: its history kept (or begun, for a VM
 * that had none), the start's settings, and `supervisor` from now on.
 */
export function kept(
  previous: SupervisionRecord | undefined,
  vm: string,
  supervisor: SupervisorIdentity | null,
  settings: SupervisionSettings,
  qemu: QemuProcess,
  now: number,
): SupervisionRecord {
  const base = previous === undefined ? launched(vm, supervisor, settings, qemu, now) : previous;
  return withSettings(
    { ...settled(base), supervisor, intent: 'run', state: 'running', qemu },
    settings,
  );
}

/** The settings a start gave a VM that runs (and is supervised elsewhere): nothing else changes. */
export function resettled(
  record: SupervisionRecord,
  settings: SupervisionSettings,
): SupervisionRecord {
  return withSettings(record, settings);
}

/** The record once spin has decided to stop the VM: nothing restarts it from now on. */
export function stopping(record: SupervisionRecord): SupervisionRecord {
  return { ...settled(record), intent: 'stop', state: 'stopped' };
}

/** What follows an exit: nothing (`exited`, `gave-up`), or a restart after `waitMs`. */
export type AfterExit =
  | { next: 'exited'; record: SupervisionRecord }
  | { next: 'gave-up'; record: SupervisionRecord }
  | { next: 'restarting'; record: SupervisionRecord; waitMs: number };

/** The record after `exit`, and what follows it by the record's policy. */
export function exited(
  record: SupervisionRecord,
  exit: VmExit,
  now: number,
  random: number,
): AfterExit {
  const { qemu, upSince, ...ended } = { ...settled(record), lastExit: exit };
  if (!restartsAfter(record.policy, exit.cause))
    return { next: 'exited', record: { ...ended, state: 'exited' } };
  const decision = decideRestart(record.policy, record.window, now, random);
  if (decision.kind === 'give-up')
    return { next: 'gave-up', record: { ...ended, state: 'gave-up', gaveUpAt: now } };
  return {
    next: 'restarting',
    record: { ...ended, state: 'backoff', nextRestartAt: now + decision.waitMs },
    waitMs: decision.waitMs,
  };
}

/** The record as a restart begins: one more restart, counted in the window. */
export function restarting(record: SupervisionRecord, now: number): SupervisionRecord {
  return {
    ...settled(record),
    restarts: record.restarts + 1,
    window: [...restartsInWindow(record.policy, record.window, now), now],
  };
}

/** The record once a restart launched `qemu`. */
export function restarted(
  record: SupervisionRecord,
  qemu: QemuProcess,
  now: number,
): SupervisionRecord {
  return { ...record, state: 'running', qemu, upSince: now };
}
