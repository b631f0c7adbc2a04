import type { CommandSpec } from '../core/package.js';
import { enqueuedState } from './broker-semantics.js';
import { commandChangingColumns, packageChangingColumns } from './sqlite-schema.js';
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

interface Queue {
  /** Keys of the queue's commands in enqueue order; finished ones are dropped from the front. */
  keys: string[];
  start: number;
  running: Set<string>;
}

/**
 * The queue store's tables in memory: packages, commands and needs with the indexes the broker's
 * rules look things up by (queue order, the running command of a queue, dependents). Every write
 * is recorded twice: as a patch for the journal, and as an undo step, so that a failed operation
 * or a failed commit leaves the tables as they were. Replaying patches (another connection's,
 * or the journal at open) goes through the same writes.
 */
export class StoreTables {
  readonly #packages = new Map<string, PackageRow>();
  readonly #commands = new Map<string, CommandRow>();
  readonly #byPackage = new Map<string, string[]>();
  readonly #deps = new Map<string, Map<string, string[]>>();
  readonly #queues = new Map<string, Queue>();
  readonly #running = new Set<string>();
  #maxSeq = 0;
  /** Patches since the last `takePatches`: what the current batch will journal. */
  #patches: TablePatch[] = [];
  #undo: (() => void)[] = [];
  /** Queues with a long finished prefix, trimmed once the batch can no longer roll back. */
  readonly #trim = new Set<Queue>();
  /** Keys written since the last `takeDirty`: what the next snapshot must rewrite. */
  readonly dirtyPackages = new Set<string>();
  readonly dirtyCommands = new Set<string>();
  readonly deletedPackages = new Set<string>();
  readonly newDeps: [string, string, string][] = [];
  /** The journal row being written (or replayed): what `readySince` records. */
  batchSeq = 0;
  /** For each ready or running command, the journal row that last made it ready. */
  readonly #readySince = new Map<string, number>();

  // Reads

  package(id: string): PackageRow | undefined {
    return this.#packages.get(id);
  }

  /** Packages newest first (creation time, then creation order). */
  listPackages(limit: number): PackageRow[] {
    const rows = [...this.#packages.values()].reverse();
    rows.sort((a, b) => b.created_at - a.created_at);
    return rows.slice(0, limit);
  }

  /** Staged packages whose TTL ran out by `now`. */
  expiredPackages(now: number): PackageRow[] {
    const rows: PackageRow[] = [];
    for (const p of this.#packages.values()) {
      if (p.state === 'staged' && p.created_at + p.ttl_ms <= now) rows.push(p);
    }
    return rows;
  }

  /** Finished packages whose end lies at or before `time`, at most `limit` of them. */
  finishedBefore(time: number, limit = 1000): PackageRow[] {
    const rows: PackageRow[] = [];
    for (const p of this.#packages.values()) {
      if (rows.length >= limit) break;
      if (p.finished_at !== null && p.finished_at <= time) rows.push(p);
    }
    return rows;
  }

  command(packageId: string, id: string): CommandRow | undefined {
    return this.#commands.get(keyOf(packageId, id));
  }

  /** The journal row that made a ready command ready; 0 when that is not known to be later. */
  readySince(packageId: string, id: string): number {
    return this.#readySince.get(keyOf(packageId, id)) ?? 0;
  }

  commandByKey(key: string): CommandRow | undefined {
    return this.#commands.get(key);
  }

  /** A package's commands in the order they were added. */
  packageCommands(packageId: string): CommandRow[] {
    const ids = this.#byPackage.get(packageId) ?? [];
    return ids.map((id) => this.#row(keyOf(packageId, id)));
  }

  packageCommandIds(packageId: string): string[] {
    return [...(this.#byPackage.get(packageId) ?? [])];
  }

  /** Ids of the commands of a package that need `id`. */
  dependents(packageId: string, id: string): readonly string[] {
    return this.#deps.get(packageId)?.get(id) ?? [];
  }

  runningInQueue(node: string, resource: string): CommandRow | undefined {
    const queue = this.#queues.get(queueKeyOf(node, resource));
    if (queue === undefined) return undefined;
    for (const key of queue.running) return this.#row(key);
    return undefined;
  }

  /** The first ready command of a queue in enqueue order, passing over waiting ones. */
  headOfQueue(node: string, resource: string): CommandRow | undefined {
    const queue = this.#queues.get(queueKeyOf(node, resource));
    if (queue === undefined) return undefined;
    const { keys } = queue;
    const start = queue.start;
    while (queue.start < keys.length && this.#commands.get(keys[queue.start] ?? '')?.active !== 1) {
      queue.start++;
    }
    if (queue.start !== start) {
      // A rollback may make a skipped command active again: it must be found again then.
      this.#undo.push(() => (queue.start = start));
      if (queue.start > 1024) this.#trim.add(queue);
    }
    for (let i = queue.start; i < keys.length; i++) {
      const row = this.#commands.get(keys[i] ?? '');
      if (row?.active === 1 && row.state === 'ready') return row;
    }
    return undefined;
  }

  /** Running commands, in enqueue order; with `expiredBy`, only leases that ran out by then. */
  running(expiredBy?: number): CommandRow[] {
    const rows: CommandRow[] = [];
    for (const key of this.#running) {
      const row = this.#row(key);
      if (expiredBy === undefined || (row.lease_expires_at ?? 0) <= expiredBy) rows.push(row);
    }
    return rows.sort((a, b) => (a.seq ?? 0) - (b.seq ?? 0));
  }

  // Writes

  insertPackage(row: PackageRow): void {
    this.#setPackage(row.id, row);
    this.#patches.push(['P', row]);
  }

  /** Writes a package row; journals the columns that changed. */
  updatePackage(next: PackageRow): void {
    const before = this.#packages.get(next.id);
    if (before === undefined) throw new Error(`Internal error: no package ${next.id}`);
    const changed = diff(packageChangingColumns, before, next);
    if (changed === undefined) return;
    this.#setPackage(next.id, next);
    this.#patches.push(['p', next.id, changed]);
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
   * replays to the same rows. Returns the rows as they are now.
   */
  enqueuePackage(packageId: string, now: number): CommandRow[] {
    const firstSeq = this.#maxSeq + 1;
    const rows = this.#enqueuePackage(packageId, firstSeq, now);
    this.#patches.push(['E', packageId, firstSeq, now]);
    return rows;
  }

  /** Writes a command row; journals the columns that changed. */
  updateCommand(next: CommandRow): void {
    const key = keyOf(next.package_id, next.id);
    const changed = diff(commandChangingColumns, this.#row(key), next);
    if (changed === undefined) return;
    this.#setCommand(key, next);
    this.#patches.push(['c', next.package_id, next.id, changed]);
  }

  /** Applies a patch journaled elsewhere (or earlier); it is not journaled again. */
  apply(patch: TablePatch): void {
    switch (patch[0]) {
      case 'P':
        this.#setPackage(patch[1].id, patch[1]);
        return;
      case 'p': {
        const before = this.#packages.get(patch[1]);
        if (before) this.#setPackage(patch[1], { ...before, ...patch[2] });
        return;
      }
      case 'C':
        this.#setCommand(keyOf(patch[1].package_id, patch[1].id), patch[1]);
        return;
      case 'A':
        this.#addCommands(patch[1], patch[2], patch[3], patch[4]);
        return;
      case 'E':
        this.#enqueuePackage(patch[1], patch[2], patch[3]);
        return;
      case 'c': {
        const key = keyOf(patch[1], patch[2]);
        const before = this.#commands.get(key);
        if (before) this.#setCommand(key, { ...before, ...patch[3] });
        return;
      }
      case 'D':
        this.#addDep(patch[1], patch[2], patch[3]);
        return;
      case 'X':
        this.#deletePackage(patch[1]);
        return;
    }
  }

  // Batches: patches to journal, undo to roll back

  /** A point to roll back to. */
  mark(): { patches: number; undo: number } {
    return { patches: this.#patches.length, undo: this.#undo.length };
  }

  /** Undoes every write since `mark`, newest first, and forgets their patches. */
  rollback(mark: { patches: number; undo: number }): void {
    while (this.#undo.length > mark.undo) this.#undo.pop()?.();
    this.#patches.length = mark.patches;
  }

  /** The patches of the batch, handed over for the journal; undo steps are dropped. */
  takePatches(): TablePatch[] {
    const patches = this.#patches;
    this.#patches = [];
    this.#undo = [];
    for (const queue of this.#trim) {
      queue.keys.splice(0, queue.start);
      queue.start = 0;
    }
    this.#trim.clear();
    return patches;
  }

  /** Forgets which rows changed: they are in the snapshot now. */
  clearDirty(): void {
    this.dirtyPackages.clear();
    this.dirtyCommands.clear();
    this.deletedPackages.clear();
    this.newDeps.length = 0;
  }

  // Internals: every change of a row goes through these, keeping the indexes and the undo log.

  #row(key: string): CommandRow {
    const row = this.#commands.get(key);
    if (row === undefined) throw new Error(`Internal error: no command ${key}`);
    return row;
  }

  #setPackage(id: string, row: PackageRow): void {
    const before = this.#packages.get(id);
    this.#packages.set(id, row);
    this.dirtyPackages.add(id);
    this.deletedPackages.delete(id);
    this.#undo.push(() => {
      if (before === undefined) this.#packages.delete(id);
      else this.#packages.set(id, before);
    });
  }

  #setCommand(key: string, row: CommandRow): void {
    const before = this.#commands.get(key);
    this.#commands.set(key, row);
    this.dirtyCommands.add(key);
    if (before === undefined) {
      let ids = this.#byPackage.get(row.package_id);
      if (ids === undefined) this.#byPackage.set(row.package_id, (ids = []));
      ids.push(row.id);
    }
    if (row.seq !== null && before?.seq !== row.seq) {
      // Enqueue assigns seq in ascending order, so appending keeps the queue sorted.
      this.#queue(row.node, row.resource).keys.push(key);
      if (row.seq > this.#maxSeq) this.#maxSeq = row.seq;
    }
    if (row.state !== before?.state) {
      // Kept while the command runs: a lease asks when what it leased became ready.
      if (row.state === 'ready') this.#readySince.set(key, this.batchSeq);
      else if (row.active !== 1) this.#readySince.delete(key);
    }
    const wasRunning = before?.state === 'running';
    const isRunning = row.state === 'running';
    if (wasRunning !== isRunning) {
      const queue = this.#queue(row.node, row.resource);
      if (isRunning) {
        queue.running.add(key);
        this.#running.add(key);
      } else {
        queue.running.delete(key);
        this.#running.delete(key);
      }
    }
    this.#undo.push(() => {
      this.#unsetCommand(key, row, before);
    });
  }

  /** Reverts `#setCommand(key, row)` to `before` (undefined: the row did not exist). */
  #unsetCommand(key: string, row: CommandRow, before: CommandRow | undefined): void {
    const queue = this.#queue(row.node, row.resource);
    if (row.state === 'running' && before?.state !== 'running') {
      queue.running.delete(key);
      this.#running.delete(key);
    } else if (row.state !== 'running' && before?.state === 'running') {
      queue.running.add(key);
      this.#running.add(key);
    }
    if (row.seq !== null && before?.seq !== row.seq && queue.keys.at(-1) === key) queue.keys.pop();
    if (before === undefined) {
      this.#commands.delete(key);
      this.#byPackage.get(row.package_id)?.pop();
    } else {
      this.#commands.set(key, before);
    }
  }

  #addCommands(packageId: string, now: number, position: number, specs: CommandSpec[]): void {
    specs.forEach((spec, i) => {
      this.#setCommand(keyOf(packageId, spec.id), stagedRow(packageId, position + i, spec, now));
    });
  }

  #enqueuePackage(packageId: string, firstSeq: number, now: number): CommandRow[] {
    const staged = this.packageCommands(packageId);
    const needsOf = staged.map((row) => JSON.parse(row.needs) as string[]);
    const dependents = new Map<string, number>();
    for (const needs of needsOf) {
      for (const need of needs) dependents.set(need, (dependents.get(need) ?? 0) + 1);
    }
    return staged.map((row, i) => {
      const needs = needsOf[i] ?? [];
      const next: CommandRow = {
        ...row,
        seq: firstSeq + i,
        state: enqueuedState(needs),
        active: 1,
        pending_needs: needs.length,
        dependents: dependents.get(row.id) ?? 0,
        updated_at: now,
      };
      this.#setCommand(keyOf(packageId, row.id), next);
      for (const need of needs) this.#addDep(packageId, need, row.id);
      return next;
    });
  }

  #addDep(packageId: string, needsId: string, commandId: string): void {
    let byNeed = this.#deps.get(packageId);
    if (byNeed === undefined) this.#deps.set(packageId, (byNeed = new Map<string, string[]>()));
    let ids = byNeed.get(needsId);
    if (ids === undefined) byNeed.set(needsId, (ids = []));
    if (ids.includes(commandId)) return;
    const list = ids;
    list.push(commandId);
    this.newDeps.push([packageId, needsId, commandId]);
    this.#undo.push(() => list.pop());
  }

  #deletePackage(id: string): void {
    const pkg = this.#packages.get(id);
    const ids = this.#byPackage.get(id) ?? [];
    const rows = ids.map((c) => this.#row(keyOf(id, c)));
    const deps = this.#deps.get(id);
    for (const row of rows) {
      const key = keyOf(id, row.id);
      this.#commands.delete(key);
      this.#running.delete(key);
      this.#readySince.delete(key);
      this.#queue(row.node, row.resource).running.delete(key);
      this.dirtyCommands.delete(key);
    }
    this.#packages.delete(id);
    this.#byPackage.delete(id);
    this.#deps.delete(id);
    this.dirtyPackages.delete(id);
    this.deletedPackages.add(id);
    this.#undo.push(() => {
      this.deletedPackages.delete(id);
      if (pkg) this.#packages.set(id, pkg);
      this.#byPackage.set(id, ids);
      if (deps) this.#deps.set(id, deps);
      for (const row of rows) {
        const key = keyOf(id, row.id);
        this.#commands.set(key, row);
        if (row.state === 'running') {
          this.#running.add(key);
          this.#queue(row.node, row.resource).running.add(key);
        }
      }
    });
  }

  #queue(node: string, resource: string): Queue {
    const key = queueKeyOf(node, resource);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { keys: [], start: 0, running: new Set() };
      this.#queues.set(key, queue);
    }
    return queue;
  }
}

/** The key of a command in the tables (package ids and command ids never hold a NUL). */
export function keyOf(packageId: string, id: string): string {
  return `${packageId}\u0000${id}`;
}

function queueKeyOf(node: string, resource: string): string {
  return `${node}\u0000${resource}`;
}

/** The columns of `columns` in which `next` differs from `before`; undefined when none does. */
function diff<T extends object>(
  columns: readonly (keyof T)[],
  before: T,
  next: T,
): Partial<T> | undefined {
  let changed: Partial<T> | undefined;
  for (const column of columns) {
    if (next[column] === before[column]) continue;
    changed ??= {};
    changed[column] = next[column];
  }
  return changed;
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
