import { budgetNow } from '../agents/emulation/admission.js';
import { freeDiskMib } from '../agents/emulation/capacity.js';
import { defaults } from '../core/defaults.js';
import { timeOfDay } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import {
  formatMib,
  nodeBudget,
  shortfalls,
  type AdmissionPolicy,
  type ReportedBudget,
  type ReportedBudgets,
  type VmAsk,
} from '../core/vm-budget.js';
import type { PlannedCommand, PlannedStart } from './planned-vms.js';

function ask(starts: readonly PlannedStart[]): VmAsk {
  return starts.reduce(
    (sum, s) => ({
      cpus: sum.cpus + (s.config?.cpus ?? 0),
      memoryMib: sum.memoryMib + (s.config?.memory ?? 0),
    }),
    { cpus: 0, memoryMib: 0 },
  );
}

/** `VM web` or `VMs web, db`. */
function vmNames(starts: readonly PlannedStart[]): string {
  const names = starts.map((s) => s.config?.name ?? s.id);
  return `${names.length === 1 ? 'VM' : 'VMs'} ${names.join(', ')}`;
}

function asks(starts: readonly PlannedStart[]): string {
  return `${vmNames(starts)} ${starts.length === 1 ? 'asks' : 'ask'}`;
}

/** Why a node's room for VMs is not known, as the end of a warning. */
function unknownRoom(room: Exclude<ReportedBudget, { state: 'reported' }>): string {
  if (room.state === 'offline') return `it is offline since ${timeOfDay(room.since)}`;
  const why = {
    'no-agent': 'no agent has connected',
    'no-report': 'its agent does not report it',
    'no-coordinator': 'no spin daemon runs here to ask', // said once for all nodes, see fitWarnings
  }[room.why];
  return `its capacity is not known (${why})`;
}

/**
 * The warnings for the sized VM starts `starts` of one node against `room`, what that node has
 * for VMs with every VM it runs counted: each package's VMs, then all of them together when each
 * package fits alone. A VM the run starts that runs already is left out of what it is checked
 * against (a restart counts only its new size). A room that is not known is said, per package,
 * rather than passed over. Pure: the budget is measured or reported elsewhere.
 */
export function nodeFitWarnings(
  node: string,
  starts: readonly PlannedStart[],
  room: ReportedBudget,
): string[] {
  const packages = [...new Set(starts.map((s) => s.package))];
  const of = (name: string): PlannedStart[] => starts.filter((s) => s.package === name);
  if (room.state !== 'reported') {
    return packages.map(
      (name) =>
        `package ${name}: cannot check whether ${vmNames(of(name))} ${of(name).length === 1 ? 'fits' : 'fit'} on node ${node}: ${unknownRoom(room)}`,
    );
  }
  const starting = new Set(starts.map((s) => s.id));
  const { node: capacity, vms, policy } = room.budget;
  const budget = nodeBudget(
    capacity,
    vms.filter((vm) => !starting.has(vm.id)),
    policy,
  );
  const warnings: string[] = [];
  for (const name of packages) {
    const missing = shortfalls(ask(of(name)), budget);
    if (missing.length > 0)
      warnings.push(
        `package ${name} cannot fit on node ${node}: ${asks(of(name))} ${missing.join(', and ')}`,
      );
  }
  const together = shortfalls(ask(starts), budget);
  if (warnings.length === 0 && packages.length > 1 && together.length > 0) {
    warnings.push(
      `packages ${packages.join(', ')} cannot fit together on node ${node}: ${asks(starts)} ${together.join(', and ')}`,
    );
  }
  return warnings;
}

/** What `fitWarnings` checks, and against what. */
export interface FitCheck {
  home: string;
  /** The VM starts of the run, on every node. */
  starts: readonly PlannedStart[];
  /** The commands of the run on this node (its new images are compared with its free disk). */
  commands: readonly PlannedCommand[];
  /** What of this node VMs may take (the plan's or apply's admission flags). */
  policy: AdmissionPolicy;
  /** What the coordinator knows of the other nodes, asked only when a VM starts on one. */
  reported: ReportedBudgets;
}

/**
 * Warnings, one line each, for packages whose VMs cannot fit their node (see `nodeFitWarnings`):
 * this node (`local`) as it is measured now, another as its last heartbeat reported it to the
 * coordinator, under its own agent's policy (the agent checks each start again when it runs it,
 * and that check is the one that refuses). And packages whose new images may grow past the free
 * disk under `$SPIN_HOME` (images are sparse: they take space as the guest writes). Nothing is
 * refused here.
 */
export async function fitWarnings(check: FitCheck): Promise<string[]> {
  const warnings: string[] = [];
  const byNode = new Map<string, PlannedStart[]>();
  for (const start of check.starts) {
    if (start.config === undefined) continue;
    const node = start.command.node;
    byNode.set(node, [...(byNode.get(node) ?? []), start]);
  }
  const images = check.commands.filter(
    (c) =>
      c.command.resource === 'storage' &&
      c.command.action === 'create_image' &&
      c.item.action !== 'update',
  );
  const local = defaults.command.node;
  const others = [...new Set([...byNode.keys(), ...images.map((c) => c.command.node)])].filter(
    (node) => node !== local,
  );
  const rooms =
    others.length === 0 ? new Map<string, ReportedBudget>() : await check.reported(others);
  // Without a coordinator to ask, no other node can be checked: one warning says so for all.
  const unasked = [...byNode].filter(([node]) => {
    const room = rooms.get(node);
    return room?.state === 'unknown' && room.why === 'no-coordinator';
  });
  if (unasked.length > 0) {
    const nodes = unasked.map(([node]) => node);
    const starts = unasked.flatMap(([, s]) => s);
    warnings.push(
      `cannot check whether ${vmNames(starts)} ${starts.length === 1 ? 'fits' : 'fit'} on ${nodes.length === 1 ? 'node' : 'nodes'} ${nodes.join(', ')}: no spin daemon runs here to ask what ${nodes.length === 1 ? 'it' : 'they'} reported; plan with --nats`,
    );
  }
  for (const [node, starts] of byNode) {
    if (unasked.some(([n]) => n === node)) continue;
    const room: ReportedBudget | undefined =
      node === local
        ? { state: 'reported', budget: budgetNow(check.home, check.policy) }
        : rooms.get(node);
    if (room === undefined)
      throw new SpinError('internal', `Internal error: no answer about node ${node}.`);
    warnings.push(...nodeFitWarnings(node, starts, room));
  }
  for (const node of new Set(images.map((c) => c.command.node))) {
    const room = node === local ? undefined : rooms.get(node);
    // A node whose room is not known is said of its VMs; its images are not guessed at.
    if (room !== undefined && room.state !== 'reported') continue;
    const free = room === undefined ? await freeDiskMib(check.home) : room.diskFreeMib;
    if (free === undefined) continue;
    const where =
      room === undefined
        ? `is free under ${check.home}`
        : `is free under the $SPIN_HOME of node ${node}`;
    const onNode = images.filter((c) => c.command.node === node);
    for (const name of new Set(onNode.map((c) => c.package))) {
      const gib = onNode
        .filter((c) => c.package === name)
        .reduce((n, c) => n + Number(c.command.params['image_size'] ?? 0), 0);
      if (gib * 1024 > free) {
        warnings.push(
          `package ${name}: its new images may grow to ${formatMib(gib * 1024)}; ${formatMib(free)} ${where}`,
        );
      }
    }
  }
  return warnings;
}
