import { SpinError } from '../../core/errors.js';
import {
  defaultAdmission,
  nodeBudget,
  shortfalls,
  type AdmissionPolicy,
  type AdmissionReport,
  type NodeBudget,
  type NodeCapacity,
} from '../../core/vm-budget.js';
import type { ActionContext } from '../agent.js';
import { confineRoot } from '../confined-path.js';
import { holdAdmissionLock } from './admission-lock.js';
import { measureNode, runningVms } from './capacity.js';
import type { VmConfig } from './vm-config.js';

/**
 * What admission counts on the node of `home` now, under `policy`: its capacity and the VMs it
 * runs. Synchronous reads of /proc and of `$SPIN_HOME/vms`, tens of microseconds: a heartbeat
 * carries it to a fleet's coordinator.
 */
export function measureAdmission(home: string, policy: AdmissionPolicy): AdmissionReport {
  return { capacity: measureNode(), vms: runningVms(home), policy };
}

/**
 * What a heartbeat of the node of `home` says of VM admission: its capacity, and the whole report
 * unless its VMs cannot be counted (`$SPIN_HOME/vms` unreadable: a start would fail its check
 * too, and the coordinator then knows the node's room for VMs as not known).
 */
export function heartbeatAdmission(
  home: string,
  policy: AdmissionPolicy,
): { capacity: NodeCapacity; admission: AdmissionReport | undefined } {
  const capacity = measureNode();
  try {
    return { capacity, admission: { capacity, vms: runningVms(home), policy } };
  } catch {
    return { capacity, admission: undefined };
  }
}

/** The budget of the node of `home` now, the running VM `except` (the one asking) left out. */
export function budgetNow(
  home: string,
  policy: AdmissionPolicy,
  except: ReadonlySet<string> = new Set(),
): NodeBudget {
  const { capacity, vms } = measureAdmission(home, policy);
  return nodeBudget(
    capacity,
    vms.filter((vm) => !except.has(vm.id)),
    policy,
  );
}

/**
 * Admission of VM starts on a node: a start that does not fit what is free fails at once with
 * `insufficient_resources` (never retried: waiting does not free a VM's memory), naming what was
 * asked and what is free. A VM that runs is left out of what it is checked against, so a restart
 * counts only its new size.
 */
export class VmAdmission {
  constructor(readonly policy: AdmissionPolicy = defaultAdmission) {}

  /** Throws `insufficient_resources` when VM `id` does not fit now. */
  #check(ctx: ActionContext, id: string, config: VmConfig): void {
    const budget = budgetNow(ctx.roots.home, this.policy, new Set([id]));
    const missing = shortfalls({ cpus: config.cpus, memoryMib: config.memory }, budget);
    if (missing.length === 0) return;
    throw new SpinError(
      'insufficient_resources',
      `VM ${config.name} asks ${missing.join(', and ')}`,
      {
        retryable: false,
        details: {
          vm: id,
          asked: { cpus: config.cpus, memoryMib: config.memory },
          free: { cpus: budget.freeCpus, memoryMib: budget.freeMemoryMib },
          reservedBy: budget.vms.map((vm) => vm.id),
        },
        suggestions: [
          'Stop a VM, give this one less memory or fewer CPUs, or allow overcommit (--memory-overcommit, --cpu-overcommit).',
        ],
      },
    );
  }

  /**
   * Runs `launch` (the start of VM `id`'s qemu) once the VM fits, holding the node's admission
   * lock from the check until `launch` is done, so that two starts at once never both take the
   * last of the memory.
   */
  async launch<T>(
    ctx: ActionContext,
    id: string,
    config: VmConfig,
    launch: () => Promise<T>,
  ): Promise<T> {
    const release = await holdAdmissionLock(await confineRoot(ctx.roots.vms), ctx.signal);
    try {
      this.#check(ctx, id, config);
      return await launch();
    } finally {
      release();
    }
  }
}
