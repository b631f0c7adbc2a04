import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';
import { defaults } from '../core/defaults.js';
import { timeOfDay } from '../core/duration.js';
import { reportedBudget, type AdmissionReport, type ReportedBudget } from '../core/vm-budget.js';
import type { NodeAvailability } from '../broker/node-watch.js';

/**
 * What a node measures of itself: its size (CPUs rounded up, memory as its VM admission counts
 * it: bounded by cgroup limits).
 */
export interface NodeSize {
  cpus: number;
  memoryBytes: number;
  /** Free and total bytes of the filesystem of its `$SPIN_HOME`. */
  diskFreeBytes: number;
  diskTotalBytes: number;
}

/** What a node is doing at the time of a heartbeat. */
export interface NodeUse {
  /** The one-minute load average. */
  load1: number;
  /** Memory the kernel cannot hand out now: total less available (`MemAvailable`, cgroups). */
  memoryUsedBytes: number;
  /** Commands it is running now. */
  running: number;
  /** qemu VMs running under its `$SPIN_HOME`. */
  vms: number;
}

/** One heartbeat, as an agent sends it every `intervalMs`. */
export interface Heartbeat {
  resources: string[];
  capacity: NodeSize;
  use: NodeUse;
  /**
   * What the node's VM admission counts, measured as its agent measures a start: a plan checks
   * the node's VMs against it. Absent when the agent could not count its VMs, and from agents
   * (and `nodes.json` files) of spin before it.
   */
  admission?: AdmissionReport;
  intervalMs: number;
  host: string;
  pid: number;
}

/**
 * A node as the coordinator knows it.
 *
 * ```
 *   (unknown) ──first heartbeat──▶ online ──3 heartbeats missed──▶ offline ──heartbeat──▶ online
 * ```
 */
export interface NodeRecord extends Heartbeat {
  name: string;
  state: 'online' | 'offline';
  firstSeenAt: number;
  lastHeartbeatAt: number;
  /** When it went offline (the instant its third heartbeat was due), if it is offline. */
  offlineSince?: number;
}

/**
 * A node as `spin nodes` and the web view show it: its record, and what its last heartbeat left
 * free for VMs under its agent's own admission policy (absent when it is offline, or reported no
 * capacity).
 */
export interface NodeStatus extends NodeRecord {
  freeForVms?: { cpus: number; memoryMib: number };
}

/** What `record`'s last heartbeat says of its room for VMs: offline and unknown nodes have none. */
export function budgetOfRecord(record: NodeRecord | undefined): ReportedBudget {
  if (record === undefined) return { state: 'unknown', why: 'no-agent' };
  if (record.state === 'offline')
    return { state: 'offline', since: record.offlineSince ?? record.lastHeartbeatAt };
  if (record.admission === undefined) return { state: 'unknown', why: 'no-report' };
  return {
    state: 'reported',
    budget: reportedBudget(record.admission),
    diskFreeMib: Math.floor(record.capacity.diskFreeBytes / (1024 * 1024)),
  };
}

function statusOf(record: NodeRecord): NodeStatus {
  const known = budgetOfRecord(record);
  if (known.state !== 'reported') return record;
  const { freeCpus, freeMemoryMib } = known.budget;
  return { ...record, freeForVms: { cpus: Math.max(0, freeCpus), memoryMib: freeMemoryMib } };
}

/** Heartbeats a node may miss before it counts as offline. */
export const missedHeartbeats = 3;

/**
 * The nodes of a fleet, in the coordinator's memory, kept in `nodes.json` beside the broker's
 * store. Heartbeats change only memory (a fleet of 1,000 nodes every few seconds would otherwise
 * mean hundreds of synced writes a second for data the next heartbeat replaces); the file is
 * written when a node appears and when one goes offline or comes back, so that after a restart of
 * the coordinator `spin nodes` and a waiting command still name a node that was known and when it
 * went offline, and a node that never connected stays distinguishable from one gone silent.
 */
export class NodeRegistry {
  readonly #file: string;
  readonly #nodes = new Map<string, NodeRecord>();
  /**
   * The resources each agent of a node serves (by host and pid), until its heartbeats stop: a
   * node may run one agent per resource, each with its own heartbeats.
   */
  readonly #agents = new Map<string, Map<string, { resources: string[]; until: number }>>();
  readonly #now: () => number;

  constructor(file: string, now: () => number = Date.now) {
    this.#file = file;
    this.#now = now;
    try {
      const saved = JSON.parse(readFileSync(file, 'utf8')) as { nodes?: NodeRecord[] };
      for (const node of saved.nodes ?? []) this.#nodes.set(node.name, node);
    } catch {
      // No file yet, or an unreadable one: the next heartbeats rebuild it.
    }
  }

  /** Records a heartbeat of `name`; returns the node as it now stands. O(1): no list is sorted. */
  heartbeat(name: string, beat: Heartbeat): NodeRecord {
    const now = this.#now();
    const known = this.#nodes.get(name);
    const wasOnline = known !== undefined && !this.#expire(known, now) && known.state === 'online';
    const record: NodeRecord = {
      ...beat,
      resources: this.#served(name, beat, now),
      name,
      state: 'online',
      firstSeenAt: known?.firstSeenAt ?? now,
      lastHeartbeatAt: now,
    };
    this.#nodes.set(name, record);
    if (!wasOnline) this.#save();
    return record;
  }

  /** What the live agents of `name` serve, `beat`'s sender included, in the order first heard. */
  #served(name: string, beat: Heartbeat, now: number): string[] {
    const agents =
      this.#agents.get(name) ?? new Map<string, { resources: string[]; until: number }>();
    this.#agents.set(name, agents);
    agents.set(`${beat.host}:${String(beat.pid)}`, {
      resources: beat.resources,
      until: now + missedHeartbeats * beat.intervalMs,
    });
    if (agents.size === 1) return beat.resources;
    const served = new Set<string>();
    for (const [key, agent] of agents) {
      if (agent.until < now) agents.delete(key);
      else for (const resource of agent.resources) served.add(resource);
    }
    return [...served];
  }

  /** Every known node, its state brought up to date with the clock, by name. */
  refresh(): NodeRecord[] {
    const now = this.#now();
    let changed = false;
    for (const node of this.#nodes.values()) changed = this.#expire(node, now) || changed;
    if (changed) this.#save();
    return [...this.#nodes.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  /** One node, if it ever sent a heartbeat, its state brought up to date. */
  get(name: string): NodeRecord | undefined {
    const node = this.#nodes.get(name);
    if (node !== undefined && this.#expire(node, this.#now())) this.#save();
    return node;
  }

  /** What `name` last reported of its room for VMs, or why that is not known. */
  budget(name: string): ReportedBudget {
    return budgetOfRecord(this.get(name));
  }

  /** Every known node as `refresh` gives it, with what it has free for VMs (see `NodeStatus`). */
  list(): NodeStatus[] {
    return this.refresh().map(statusOf);
  }

  /** Marks a node offline once its third heartbeat is overdue; true when it changed. */
  #expire(node: NodeRecord, now: number): boolean {
    const due = node.lastHeartbeatAt + missedHeartbeats * node.intervalMs;
    if (node.state !== 'online' || now <= due) return false;
    node.state = 'offline';
    node.offlineSince = due;
    return true;
  }

  /**
   * Whether `node` has an agent for `resource`, for the broker's node watch: the daemon's own node
   * (`local`) always does; another node does while its heartbeats come and name the resource.
   */
  availability(node: string, resource: string): NodeAvailability {
    if (node === defaults.command.node) return { available: true };
    const record = this.get(node);
    if (record === undefined) return { available: false, why: 'no agent has connected' };
    if (record.state === 'online') {
      if (record.resources.includes(resource)) return { available: true };
      return {
        available: false,
        why: `its agent serves ${record.resources.join(', ') || 'nothing'}, not ${resource}`,
      };
    }
    const since = record.offlineSince ?? record.lastHeartbeatAt;
    return {
      available: false,
      why: `offline since ${timeOfDay(since)}`,
      since,
    };
  }

  #save(): void {
    const nodes = [...this.#nodes.values()];
    writeDurably(this.#file, JSON.stringify({ nodes }, null, 2) + '\n');
  }
}

/** Writes a small file atomically: a temp file, fsync, rename. */
export function writeDurably(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${String(process.pid)}.tmp`;
  const fd = openSync(temp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
}
