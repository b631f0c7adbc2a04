import { internalError, unreachable } from '../core/errors.js';
import type { CommandSpec } from '../core/package.js';
import type { CommandState } from './broker-types.js';
import { enqueuedState } from './broker-semantics.js';
import type { CommandRow, PackageRow } from './sqlite-schema.js';

/**
 * One change to the tables, as the journal records it. Updates carry only the columns that
 * changed, so the ack of a no-op command journals a few dozen bytes, not two whole rows.
 */
export type TablePatch =
  | ['P', PackageRow]
  | ['p', string, Partial<PackageRow>]
  | ['C', CommandRow]
  | ['A', string, number, number, CommandSpec[]]
  | ['E', string, number, number]
  | ['c', string, string, Partial<CommandRow>]
  | ['D', string, string, string]
  | ['X', string];

/** A package with its commands (by id, in the order they were added) and who needs whom. */
interface PackageEntry {
  row: PackageRow;
  commands: Map<string, CommandRow>;
  /** For each command id, the ids of the commands that need it. */
  dependents: Map<string, string[]>;
}

interface Queue {
  /** The queue's commands in enqueue order; finished ones are dropped from the front. */
  rows: CommandRow[];
  start: number;
  running: Set<CommandRow>;
}

/** A command of a package about to be enqueued, with its needs: what enqueue checks, then queues. */
export interface StagedCommand {
  row: CommandRow;
  id: string;
  needs: string[];
}

/** A point of the batch to roll back to. */
export interface TablesMark {
  patches: number;
  undo: number;
}

/**
 * The queue store's tables in memory: packages, commands and needs with the indexes the broker's
 * rules look things up by (queue order, the running command of a queue, dependents). Rows are
 * changed in place, and every change is recorded twice: as a patch for the journal (the columns
 * that changed), and as an undo step (the values they held), so that a failed operation or a
 * failed commit leaves the tables as they were. Replaying patches (another connection's, or the
 * journal at open) goes through the same writes.
 */
export class StoreTables {
  readonly #packages = new Map<string, PackageEntry>();
  readonly #queues = new Map<string, Queue>();
  readonly #running = new Set<CommandRow>();
  #maxSeq = 0;
  /** Patches since the last `takePatches`: what the current batch will journal. */
  #patches: TablePatch[] = [];
  /**
   * Undo steps of the batch, three slots each, newest last: a row, a column and the value it
   * held; or a function and two empty slots.
   */
  #undo: unknown[] = [];
  /** Queues with a long finished prefix, trimmed once the batch can no longer roll back. */
  readonly #trim = new Set<Queue>();
  /** Rows written since the last `clearDirty`: what the next snapshot must rewrite. */
  readonly dirtyPackages = new Set<PackageRow>();
  readonly dirtyCommands = new Set<CommandRow>();
  readonly deletedPackages = new Set<string>();
  readonly newDeps: [string, string, string][] = [];
  /** The journal row being written (or replayed): what `readySince` records. */
  batchSeq = 0;
  /** For each ready or running command, the journal row that last made it ready. */
  readonly #readySince = new Map<CommandRow, number>();

  // Reads. Rows are live: they change with the tables, so copy what must outlast an operation.

  package(id: string): PackageRow | undefined {
    return this.#packages.get(id)?.row;
  }

  /** Packages newest first (creation time, then creation order). */
  listPackages(limit: number): PackageRow[] {
    const rows = [...this.#packages.values()].map((p) => p.row).reverse();
    rows.sort((a, b) => b.created_at - a.created_at);
    return rows.slice(0, limit);
  }

  /** Staged packages whose TTL ran out by `now`. */
  expiredPackages(now: number): PackageRow[] {
    const rows: PackageRow[] = [];
    for (const { row } of this.#packages.values()) {
      if (row.state === 'staged' && row.created_at + row.ttl_ms <= now) rows.push(row);
    }
    return rows;
  }

  /** Finished packages whose end lies at or before `time`, at most `limit` of them. */
  finishedBefore(time: number, limit = 1000): PackageRow[] {
    const rows: PackageRow[] = [];
    for (const { row } of this.#packages.values()) {
      if (rows.length >= limit) break;
      if (row.finished_at !== null && row.finished_at <= time) rows.push(row);
    }
    return rows;
  }

  command(packageId: string, id: string): CommandRow | undefined {
    return this.#packages.get(packageId)?.commands.get(id);
  }

  /** Whether `row` is in the tables (not rolled back, not deleted with its package). */
  holds(row: CommandRow): boolean {
    return this.command(row.package_id, row.id) === row;
  }

  /** The journal row that made a ready command ready; 0 when that is not known to be later. */
  readySince(packageId: string, id: string): number {
    const row = this.command(packageId, id);
    return row === undefined ? 0 : (this.#readySince.get(row) ?? 0);
  }

  /** A package's commands by id, in the order they were added. */
  packageCommands(packageId: string): ReadonlyMap<string, CommandRow> {
    return this.#packages.get(packageId)?.commands ?? new Map<string, CommandRow>();
  }

  /** A package's commands in the order they were added, with their needs parsed. */
  stagedGraph(packageId: string): StagedCommand[] {
    return [...this.packageCommands(packageId).values()].map((row) => ({
      row,
      id: row.id,
      needs: JSON.parse(row.needs) as string[],
    }));
  }

  /** Ids of the commands of a package that need `id`. */
  dependents(packageId: string, id: string): readonly string[] {
    return this.#packages.get(packageId)?.dependents.get(id) ?? [];
  }

  runningInQueue(node: string, resource: string): CommandRow | undefined {
    const queue = this.#queues.get(queueKeyOf(node, resource));
    if (queue === undefined) return undefined;
    for (const row of queue.running) return row;
    return undefined;
  }

  /** The first ready command of a queue in enqueue order, passing over waiting ones. */
  headOfQueue(node: string, resource: string): CommandRow | undefined {
    const queue = this.#queues.get(queueKeyOf(node, resource));
    if (queue === undefined) return undefined;
    const { rows } = queue;
    const start = queue.start;
    while (queue.start < rows.length && rows[queue.start]?.active !== 1) queue.start++;
    if (queue.start !== start) {
      // A rollback may make a passed command active again: it must be found again then.
      this.#undone(() => (queue.start = start));
      if (queue.start > 1024) this.#trim.add(queue);
    }
    for (let i = queue.start; i < rows.length; i++) {
      const row = rows[i];
      if (row?.active === 1 && row.state === 'ready') return row;
    }
    return undefined;
  }

  /** Running commands, in enqueue order; with `expiredBy`, only leases that ran out by then. */
  running(expiredBy?: number): CommandRow[] {
    const rows: CommandRow[] = [];
    for (const row of this.#running) {
      if (expiredBy === undefined || (row.lease_expires_at ?? 0) <= expiredBy) rows.push(row);
    }
    return rows.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  }

  // Writes

  insertPackage(row: PackageRow): void {
    this.#insertPackage({ ...row });
    this.#patches.push(['P', { ...row }]);
  }

  /** Sets columns of a package; journals those that changed. */
  updatePackage(row: PackageRow, change: Partial<PackageRow>): void {
    const changed = this.#assign(row, change);
    if (changed === undefined) return;
    this.dirtyPackages.add(row);
    this.#patches.push(['p', row.id, changed]);
  }

  /** Removes a package with its commands and needs. */
  deletePackage(id: string): void {
    this.#deletePackage(id);
    this.#patches.push(['X', id]);
  }

  /** Adds staged commands to a package, from `position` on; journals their specs only. */
  addCommands(packageId: string, now: number, position: number, specs: CommandSpec[]): void {
    this.#addCommands(packageId, now, position, specs);
    this.#patches.push(['A', packageId, now, position, specs]);
  }

  /**
   * Puts every command of a staged package in its queue, in the order they were added, with
   * `seq` counting on from the highest so far; journals one patch for the whole package, which
   * replays to the same rows. Returns the rows.
   */
  enqueuePackage(
    packageId: string,
    now: number,
    graph = this.stagedGraph(packageId),
  ): CommandRow[] {
    const firstSeq = this.#maxSeq + 1;
    const rows = this.#enqueuePackage(packageId, firstSeq, now, graph);
    this.#patches.push(['E', packageId, firstSeq, now]);
    return rows;
  }

  /** Sets columns of a command; journals those that changed. */
  updateCommand(row: CommandRow, change: Partial<CommandRow>): void {
    const from = row.state;
    const changed = this.#assign(row, change);
    if (changed === undefined) return;
    this.#changedCommand(row, from);
    this.#patches.push(['c', row.package_id, row.id, changed]);
  }

  /** Applies a patch journaled elsewhere (or earlier); it is not journaled again. */
  apply(patch: TablePatch): void {
    switch (patch[0]) {
      case 'P':
        this.#insertPackage({ ...patch[1] });
        return;
      case 'p': {
        const row = this.package(patch[1]);
        if (row && this.#assign(row, patch[2])) this.dirtyPackages.add(row);
        return;
      }
      case 'C':
        this.#insertCommand({ ...patch[1] });
        return;
      case 'A':
        this.#addCommands(patch[1], patch[2], patch[3], patch[4]);
        return;
      case 'E':
        this.#enqueuePackage(patch[1], patch[2], patch[3], this.stagedGraph(patch[1]));
        return;
      case 'c': {
        const row = this.command(patch[1], patch[2]);
        if (row === undefined) return;
        const from = row.state;
        if (this.#assign(row, patch[3])) this.#changedCommand(row, from);
        return;
      }
      case 'D':
        this.#addDep(patch[1], patch[2], patch[3]);
        return;
      case 'X':
        this.#deletePackage(patch[1]);
        return;
      default:
        unreachable(patch);
    }
  }

  // Batches: patches to journal, undo to roll back

  /** A point to roll back to. */
  mark(): TablesMark {
    return { patches: this.#patches.length, undo: this.#undo.length };
  }

  /** Undoes every write since `mark`, newest first, and forgets their patches. */
  rollback(mark: TablesMark): void {
    const undo = this.#undo;
    while (undo.length > mark.undo) {
      const value = undo.pop();
      const column = undo.pop() as string | undefined;
      const target = undo.pop();
      if (typeof target === 'function') (target as () => void)();
      else (target as Record<string, unknown>)[column ?? ''] = value;
    }
    this.#patches.length = mark.patches;
  }

  /** The patches of the batch, handed over for the journal; undo steps are dropped. */
  takePatches(): TablePatch[] {
    const patches = this.#patches;
    this.#patches = [];
    this.#undo = [];
    for (const queue of this.#trim) {
      queue.rows.splice(0, queue.start);
      queue.start = 0;
    }
    this.#trim.clear();
    return patches;
  }

  /** How many rows the next snapshot writes. */
  get dirtyRows(): number {
    return this.dirtyPackages.size + this.dirtyCommands.size;
  }

  /** Forgets which rows changed: they are in the snapshot now. */
  clearDirty(): void {
    this.dirtyPackages.clear();
    this.dirtyCommands.clear();
    this.deletedPackages.clear();
    this.newDeps.length = 0;
  }

  // Internals: every change goes through these, keeping the indexes and the undo log.

  /** Sets the columns of `change` that differ on `row`; returns them, or undefined if none. */
  #assign<T extends object>(row: T, change: Partial<T>): Partial<T> | undefined {
    let changed: Partial<T> | undefined;
    for (const column in change) {
      const value = change[column] as T[typeof column];
      if (row[column] === value) continue;
      this.#undo.push(row, column, row[column]);
      row[column] = value;
      changed ??= {};
      changed[column] = value;
    }
    return changed;
  }

  /** Records an undo step that is not a column's value. */
  #undone(step: () => void): void {
    this.#undo.push(step, undefined, undefined);
  }

  /** Keeps the indexes of a command whose columns changed (its state was `from`). */
  #changedCommand(row: CommandRow, from: CommandState): void {
    this.dirtyCommands.add(row);
    const to = row.state;
    if (to === from) return;
    const since = this.#readySince.get(row);
    // Kept while the command runs: a lease asks when what it leased became ready.
    if (to === 'ready') this.#readySince.set(row, this.batchSeq);
    else if (row.active !== 1) this.#readySince.delete(row);
    if (from === 'running' || to === 'running') this.#setRunning(row, to === 'running');
    this.#undone(() => {
      if (since === undefined) this.#readySince.delete(row);
      else this.#readySince.set(row, since);
      if (from === 'running' || to === 'running') this.#setRunning(row, from === 'running');
    });
  }

  #setRunning(row: CommandRow, running: boolean): void {
    const queue = this.#queue(row.node, row.resource);
    if (running) {
      queue.running.add(row);
      this.#running.add(row);
    } else {
      queue.running.delete(row);
      this.#running.delete(row);
    }
  }

  #insertPackage(row: PackageRow): void {
    const entry: PackageEntry = { row, commands: new Map(), dependents: new Map() };
    this.#packages.set(row.id, entry);
    this.dirtyPackages.add(row);
    this.deletedPackages.delete(row.id);
    this.#undone(() => this.#packages.delete(row.id));
  }

  /** Adds a whole row (from the snapshot): to its package and, once enqueued, its queue. */
  #insertCommand(row: CommandRow): void {
    const entry = this.#entry(row.package_id);
    entry.commands.set(row.id, row);
    this.dirtyCommands.add(row);
    if (row.seq !== null) {
      this.#queue(row.node, row.resource).rows.push(row);
      if (row.seq > this.#maxSeq) this.#maxSeq = row.seq;
    }
    if (row.state === 'ready' || row.state === 'running') this.#readySince.set(row, this.batchSeq);
    if (row.state === 'running') this.#setRunning(row, true);
  }

  #addCommands(packageId: string, now: number, position: number, specs: CommandSpec[]): void {
    const { commands } = this.#entry(packageId);
    for (let i = 0; i < specs.length; i++) {
      const row = stagedRow(packageId, position + i, specs[i] as CommandSpec, now);
      commands.set(row.id, row);
      this.dirtyCommands.add(row);
    }
    this.#undone(() => {
      for (const spec of specs) commands.delete(spec.id);
    });
  }

  #enqueuePackage(
    packageId: string,
    firstSeq: number,
    now: number,
    graph: StagedCommand[],
  ): CommandRow[] {
    const rows = graph.map((c) => c.row);
    const needsOf = graph.map((c) => c.needs);
    const dependents = new Map<string, number>();
    for (const needs of needsOf) {
      for (const need of needs) dependents.set(need, (dependents.get(need) ?? 0) + 1);
    }
    const maxSeq = this.#maxSeq;
    const queued = new Map<Queue, number>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as CommandRow;
      const needs = needsOf[i] ?? [];
      const queue = this.#queue(row.node, row.resource);
      if (!queued.has(queue)) queued.set(queue, queue.rows.length);
      queue.rows.push(row);
      this.#assign(row, {
        seq: firstSeq + i,
        state: enqueuedState(needs),
        active: 1,
        pending_needs: needs.length,
        dependents: dependents.get(row.id) ?? 0,
        updated_at: now,
      });
      this.dirtyCommands.add(row);
      if (row.state === 'ready') this.#readySince.set(row, this.batchSeq);
      for (const need of needs) this.#addDep(packageId, need, row.id);
    }
    this.#maxSeq = Math.max(maxSeq, firstSeq + rows.length - 1);
    this.#undone(() => {
      this.#maxSeq = maxSeq;
      for (const [queue, length] of queued) queue.rows.length = length;
      for (const row of rows) this.#readySince.delete(row);
    });
    return rows;
  }

  #addDep(packageId: string, needsId: string, commandId: string): void {
    const byNeed = this.#entry(packageId).dependents;
    let ids = byNeed.get(needsId);
    if (ids === undefined) byNeed.set(needsId, (ids = []));
    if (ids.includes(commandId)) return;
    const list = ids;
    list.push(commandId);
    this.newDeps.push([packageId, needsId, commandId]);
    this.#undone(() => list.pop());
  }

  #deletePackage(id: string): void {
    const entry = this.#packages.get(id);
    if (entry === undefined) return;
    const rows = [...entry.commands.values()];
    for (const row of rows) {
      if (row.state === 'running') this.#setRunning(row, false);
      this.#readySince.delete(row);
      this.dirtyCommands.delete(row);
    }
    this.#packages.delete(id);
    this.dirtyPackages.delete(entry.row);
    this.deletedPackages.add(id);
    this.#undone(() => {
      this.deletedPackages.delete(id);
      this.#packages.set(id, entry);
      // Written again by the next snapshot: harmless if unchanged, needed if they were dirty.
      this.dirtyPackages.add(entry.row);
      for (const row of rows) {
        this.dirtyCommands.add(row);
        if (row.state === 'running') this.#setRunning(row, true);
      }
    });
  }

  #entry(packageId: string): PackageEntry {
    const entry = this.#packages.get(packageId);
    if (entry === undefined) throw internalError(`no package ${packageId}`);
    return entry;
  }

  #queue(node: string, resource: string): Queue {
    const key = queueKeyOf(node, resource);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { rows: [], start: 0, running: new Set() };
      this.#queues.set(key, queue);
    }
    return queue;
  }
}

function queueKeyOf(node: string, resource: string): string {
  return `${node}\u0000${resource}`;
}

/** The row of a command just added: staged, outside any queue until enqueue. */
function stagedRow(
  packageId: string,
  position: number,
  spec: CommandSpec,
  now: number,
): CommandRow {
  return {
    package_id: packageId,
    id: spec.id,
    position,
    seq: null,
    node: spec.node,
    resource: spec.resource,
    action: spec.action,
    params: JSON.stringify(spec.params),
    needs: JSON.stringify(spec.needs),
    timeout_ms: spec.timeoutMs,
    retries: spec.retries,
    state: 'staged',
    active: null,
    pending_needs: 0,
    dependents: 0,
    attempt: 0,
    failures: 0,
    attempt_id: null,
    holder: null,
    lease_expires_at: null,
    deadline_at: null,
    available_at: 0,
    reason: null,
    error: null,
    output: null,
    updated_at: now,
  };
}
