import { defaults } from './defaults.js';

// The arithmetic of VM admission, apart from how it is measured (agents/emulation/capacity.ts):
// an agent checks each start against its own node with it, and a plan checks VMs against the
// budget a node reported in its last heartbeat.

/** What the node offers its VMs, as the kernel and the process's cgroups say now. */
export interface NodeCapacity {
  /** CPUs this process may use: `os.availableParallelism()`, bounded by a cgroup CPU quota. */
  cpus: number;
  /** Memory in MiB: `MemTotal`, bounded by a cgroup memory limit. */
  memoryMib: number;
  /**
   * MiB the kernel can hand out now without swapping: `MemAvailable`, bounded by a cgroup's limit
   * less what the cgroup uses.
   */
  availableMib: number;
}

/** What a VM id is: an integer or a short name, the name of its directory under `vms/`. */
export const vmIdPattern = '^[a-zA-Z0-9][a-zA-Z0-9_-]{0,62}$';

/** What one running VM of spin's holds: its CPUs and memory, and how much it has touched yet. */
export interface VmReservation {
  /** Its id (`vmIdPattern`). */
  id: string;
  cpus: number;
  memoryMib: number;
  /** The qemu's resident memory: what of `memoryMib` (and qemu's own) it already uses. */
  residentMib: number;
}

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

/** `4`, `1.5`: a number of CPUs, or a ratio. */
export function formatCount(value: number): string {
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

/**
 * What a node measures for VM admission, as its heartbeats carry it to a fleet's coordinator: its
 * capacity, the VMs it runs, and the policy its agent admits starts under (its flags).
 */
export interface AdmissionReport {
  capacity: NodeCapacity;
  vms: VmReservation[];
  policy: AdmissionPolicy;
}

/** The budget of a node as `report` says. */
export function reportedBudget(report: AdmissionReport): NodeBudget {
  return nodeBudget(report.capacity, report.vms, report.policy);
}

/**
 * What a plan knows of the room a node has for VMs: its budget (measured here for this node, as
 * its last heartbeat reported it for another), or why there is none: it is offline (since
 * `since`), no agent of it has connected, its agent reports no capacity (it could not count its
 * VMs, or it is an older spin), or no coordinator answers to ask.
 */
export type ReportedBudget =
  | {
      state: 'reported';
      budget: NodeBudget;
      /** Free disk under the node's `$SPIN_HOME`, where its images go (another node's report). */
      diskFreeMib?: number;
    }
  | { state: 'offline'; since: number }
  | { state: 'unknown'; why: 'no-agent' | 'no-report' | 'no-coordinator' };

/**
 * Looks up what the coordinator knows now of nodes other than this one (`local`): one answer for
 * each of `nodes`, asked together (of a daemon: one request).
 */
export type ReportedBudgets = (
  nodes: readonly string[],
) => Promise<ReadonlyMap<string, ReportedBudget>>;
