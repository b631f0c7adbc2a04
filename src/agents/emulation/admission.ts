import { defaults } from '../../core/defaults.js';
import { SpinError } from '../../core/errors.js';
import type { ActionContext } from '../agent.js';
import { confineRoot } from '../confined-path.js';
import { holdAdmissionLock } from './admission-lock.js';
import { measureNode, runningVms, type NodeCapacity, type VmReservation } from './capacity.js';
import type { VmConfig } from './vm-config.js';

/**
 * How much of the node VMs may be promised. The VMs' CPUs may add up to `cpuOvercommit` times the
 * node's CPUs, their memory to `memoryOvercommit` times its memory less `reserveMemoryMib` (held
 * back for the host). Without memory overcommit (1), a VM must also fit in what the kernel has
 * available now, less what the running VMs have not touched yet and may still take.
 */
export interface AdmissionPolicy {
  cpuOvercommit: number;
  memoryOvercommit: number;
  reserveMemoryMib: number;
}

/** The policy where no flag says otherwise (see `defaults.admission`). */
export const defaultAdmission: AdmissionPolicy = { ...defaults.admission };

/** What a VM, or several, ask of the node. */
export interface VmAsk {
  cpus: number;
  memoryMib: number;
}

/** What VMs may still take of the node under a policy, with what it was worked out from. */
export interface NodeBudget {
  node: NodeCapacity;
  policy: AdmissionPolicy;
  /** The running VMs counted (the one asking left out). */
  vms: VmReservation[];
  freeCpus: number;
  freeMemoryMib: number;
  /** Memory not yet promised to running VMs: overcommitted capacity less their memory. */
  unpromisedMib: number;
  /** What the running VMs may still take of the available memory: their memory not resident yet. */
  untouchedMib: number;
}

/** The budget of `node` with `vms` running, under `policy`. */
export function nodeBudget(
  node: NodeCapacity,
  vms: readonly VmReservation[],
  policy: AdmissionPolicy,
): NodeBudget {
  const sum = (f: (vm: VmReservation) => number): number => vms.reduce((n, vm) => n + f(vm), 0);
  const usableMib = Math.max(0, node.memoryMib - policy.reserveMemoryMib);
  const unpromisedMib = Math.floor(usableMib * policy.memoryOvercommit) - sum((vm) => vm.memoryMib);
  const untouchedMib = sum((vm) => Math.max(0, vm.memoryMib - vm.residentMib));
  const measuredMib = node.availableMib - untouchedMib;
  return {
    node,
    policy,
    vms: [...vms],
    freeCpus: node.cpus * policy.cpuOvercommit - sum((vm) => vm.cpus),
    freeMemoryMib: Math.max(
      0,
      policy.memoryOvercommit > 1 ? unpromisedMib : Math.min(unpromisedMib, measuredMib),
    ),
    unpromisedMib,
    untouchedMib,
  };
}

/** `23 GiB`, `15.9 GiB`, `512 MiB`. */
export function formatMib(value: number): string {
  if (value < 1024) return `${String(Math.round(value))} MiB`;
  return `${(value / 1024).toFixed(1).replace(/\.0$/, '')} GiB`;
}

function formatCount(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

function vmList(vms: readonly VmReservation[]): string {
  const ids = vms.map((vm) => vm.id);
  const shown =
    ids.length > 6
      ? `${ids.slice(0, 5).join(', ')} and ${String(ids.length - 5)} more`
      : ids.join(', ');
  return `${ids.length === 1 ? 'VM' : 'VMs'} ${shown}`;
}

function memoryTerms(budget: NodeBudget): string {
  const { node, policy, vms } = budget;
  const terms = [`${formatMib(node.memoryMib)} total`];
  if (policy.reserveMemoryMib > 0)
    terms.push(`${formatMib(policy.reserveMemoryMib)} kept for the host`);
  if (policy.memoryOvercommit > 1)
    terms.push(`overcommitted ${formatCount(policy.memoryOvercommit)}x`);
  const held = vms.reduce((n, vm) => n + vm.memoryMib, 0);
  if (held > 0) terms.push(`${formatMib(held)} reserved by ${vmList(vms)}`);
  let text = terms.join(', ');
  if (budget.freeMemoryMib < budget.unpromisedMib) {
    // The kernel's available memory is what binds: other programs use the rest.
    text += `; the kernel has ${formatMib(node.availableMib)} available now`;
    if (budget.untouchedMib > 0)
      text += `, of which running VMs may still take ${formatMib(budget.untouchedMib)}`;
  }
  return text;
}

function cpuTerms(budget: NodeBudget): string {
  const { node, policy, vms } = budget;
  const held = vms.reduce((n, vm) => n + vm.cpus, 0);
  const terms = [
    `${formatCount(node.cpus)} CPU${node.cpus === 1 ? '' : 's'} overcommitted ${formatCount(policy.cpuOvercommit)}x`,
  ];
  if (held > 0) terms.push(`${String(held)} reserved by ${vmList(vms)}`);
  return terms.join(', ');
}

/**
 * What of `ask` does not fit in `budget`, one phrase per resource, or an empty list when it fits:
 * `16384 MiB of memory; 7120 MiB is free (23 GiB total, 15.9 GiB reserved by VMs 1, 2)`.
 */
export function shortfalls(ask: VmAsk, budget: NodeBudget): string[] {
  const found: string[] = [];
  if (ask.memoryMib > budget.freeMemoryMib) {
    found.push(
      `${String(ask.memoryMib)} MiB of memory; ${String(budget.freeMemoryMib)} MiB is free (${memoryTerms(budget)})`,
    );
  }
  if (ask.cpus > budget.freeCpus) {
    const free = Math.max(0, budget.freeCpus);
    found.push(
      `${String(ask.cpus)} CPU${ask.cpus === 1 ? '' : 's'}; ${formatCount(free)} ${free === 1 ? 'is' : 'are'} free (${cpuTerms(budget)})`,
    );
  }
  return found;
}

/** The budget of the node of `home` now, the running VM `except` (the one asking) left out. */
export async function budgetNow(
  home: string,
  policy: AdmissionPolicy,
  except: ReadonlySet<string> = new Set(),
): Promise<NodeBudget> {
  const vms = await runningVms(home);
  return nodeBudget(
    measureNode(),
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
  async #check(ctx: ActionContext, id: string, config: VmConfig): Promise<void> {
    const budget = await budgetNow(ctx.roots.home, this.policy, new Set([id]));
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
      await this.#check(ctx, id, config);
      return await launch();
    } finally {
      release();
    }
  }
}
