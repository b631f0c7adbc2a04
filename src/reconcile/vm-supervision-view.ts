import type { AgentRoots } from '../agents/agent.js';
import type { RestartPolicy } from '../agents/emulation/restart-policy.js';
import {
  isSupervised,
  readSupervision,
  type SupervisionState,
  type SupervisorRole,
} from '../agents/emulation/supervision-record.js';
import { vmIdOf, vmPaths } from '../agents/emulation/vm-config.js';
import type { ExitCause } from '../agents/emulation/vm-exit.js';
import type { HealthSettings } from '../agents/emulation/vm-health.js';
import { formatDuration } from '../core/duration.js';

/** A VM's supervision as `spin status` shows it (times as ISO strings). */
export interface SupervisionView {
  /** Whether a live process supervises it now. */
  supervised: boolean;
  /** Who supervises it, or did until it went away (`gone`); absent when nobody ever did. */
  supervisor?: { role: SupervisorRole; pid: number; gone: boolean };
  state: SupervisionState;
  /** Restarts since its start command ran. */
  restarts: number;
  /** When the qemu that runs now was launched. */
  upSince?: string;
  lastExit?: { cause: ExitCause; at: string; detail?: string };
  nextRestartAt?: string;
  gaveUpAt?: string;
  policy: RestartPolicy;
  health?: HealthSettings;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The supervision of the VM an `emulation.start` command's params name, from its record
 * (`vms/<id>/supervision.json`); undefined when it has none (never started by a spin that keeps
 * one) or the params name no VM.
 */
export async function supervisionView(
  roots: AgentRoots,
  params: Record<string, unknown>,
): Promise<SupervisionView | undefined> {
  let record;
  try {
    record = await readSupervision(await vmPaths({ roots }, vmIdOf(params)));
  } catch {
    return undefined;
  }
  if (record === undefined) return undefined;
  const view: SupervisionView = {
    supervised: isSupervised(record),
    state: record.state,
    restarts: record.restarts,
    policy: record.policy,
  };
  if (record.supervisor !== null) {
    const { role, pid } = record.supervisor;
    view.supervisor = { role, pid, gone: !view.supervised };
  }
  if (record.upSince !== undefined && record.state === 'running')
    view.upSince = iso(record.upSince);
  if (record.lastExit !== undefined) {
    const { cause, at, detail } = record.lastExit;
    view.lastExit = { cause, at: iso(at), ...(detail === undefined ? {} : { detail }) };
  }
  if (record.nextRestartAt !== undefined) view.nextRestartAt = iso(record.nextRestartAt);
  if (record.gaveUpAt !== undefined) view.gaveUpAt = iso(record.gaveUpAt);
  if (record.health !== undefined) view.health = record.health;
  return view;
}

/** Why a start whose VM was given up counts as failed, for `spin status`. */
export function gaveUpMessage(view: SupervisionView): string {
  const { attempts, intervalMs } = view.policy;
  const cause = view.lastExit === undefined ? '' : `; last exit: ${view.lastExit.cause}`;
  return `the VM's supervisor gave up: it ended again after ${String(view.restarts)} restart${view.restarts === 1 ? '' : 's'} (at most ${String(attempts)} in ${formatDuration(intervalMs)})${cause} [gave_up]`;
}
