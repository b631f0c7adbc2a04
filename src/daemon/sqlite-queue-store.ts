import { randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import {
  checkPackageGraph,
  decideAfterFailure,
  defaultTimings,
  enqueuedState,
  errorOfAck,
  expiryKind,
  isRetryable,
  packageStateOf,
  prepareCommands,
  skipReason,
  timeoutError,
} from './broker-semantics.js';
import type { BrokerTimings } from './broker-semantics.js';
import type {
  AckOutcome,
  AckResult,
  AttemptRef,
  BrokerEvent,
  BrokerListener,
  CommandInput,
  CommandState,
  Lease,
  LeaseOptions,
  NewPackageOptions,
  PackageState,
  PackageStatus,
} from './broker-types.js';
import { terminalCommandStates, terminalPackageStates } from './broker-types.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';
import { GroupCommit } from './group-commit.js';
import type { AckReply, PackageSummary, QueueStore, SweepReport } from './queue-store.js';
import { commandStatusOf, leaseOf, specOf } from './sqlite-rows.js';
import { migrate, prepareStatements } from './sqlite-schema.js';
import type { CommandRow, PackageRow, Statements } from './sqlite-schema.js';

/** Options of the SQLite queue store. */
export interface SqliteQueueStoreOptions {
  /** The database file (created with its directory's permissions); `:memory:` for throwaway. */
  path: string;
  clock?: Clock;
  timings?: Partial<BrokerTimings>;
  /**
   * `full` (default): every commit is fsynced before its promise resolves. `normal` skips the
   * fsync of WAL commits: a power loss may undo the last commits; only for tests and scratch.
   */
  synchronous?: 'full' | 'normal';
}

/**
 * The queue store on SQLite (better-sqlite3, WAL): the broker of one host. Writes that arrive in
 * the same turn of the event loop share one transaction and one fsync (group commit). Several
 * processes may open the same file (the CLI while no daemon runs); each write transaction is
 * `BEGIN IMMEDIATE`, so the rules hold across them.
 */
export class SqliteQueueStore implements QueueStore {
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #clock: Clock;
  readonly #timings: BrokerTimings;
  readonly #commits: GroupCommit;
  /** Runs one operation inside the batch's transaction, in a savepoint of its own. */
  readonly #savepoint: (op: () => unknown) => unknown;
  readonly #listeners = new Set<BrokerListener>();
  /** Events of the transaction in progress, emitted once it commits. */
  #events: BrokerEvent[] = [];
  #now = 0;
  /**
   * Package rows read or written in the current batch. The batch holds the write lock, so no
   * other process changes them meanwhile; a failed operation drops the cache with its savepoint.
   */
  readonly #packages = new Map<string, PackageRow>();

  constructor(options: SqliteQueueStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#db = new Database(options.path, { timeout: 10_000 });
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    this.#db
      .transaction(() => {
        migrate(this.#db);
      })
      .immediate();
    this.#sql = prepareStatements(this.#db);
    this.#savepoint = this.#db.transaction((op: () => unknown) => op());
    const batch = this.#db.transaction((ops: (() => void)[]) => {
      for (const op of ops) op();
    });
    this.#commits = new GroupCommit((ops) => {
      this.#events = [];
      this.#packages.clear();
      try {
        batch.immediate(ops);
      } catch (error) {
        this.#events = [];
        this.#packages.clear();
        throw error;
      }
      const events = this.#events;
      this.#events = [];
      for (const event of events) for (const listener of this.#listeners) listener(event);
    });
  }

  createPackage(options: NewPackageOptions = {}): Promise<string> {
    return this.#write(() => {
      const id = `p-${randomBytes(6).toString('hex')}`;
      const name = options.name ?? id;
      this.#sql.insertPackage.run(id, name, this.#now, options.ttlMs ?? this.#timings.packageTtlMs);
      this.#events.push({ type: 'package', at: this.#now, packageId: id, name, to: 'staged' });
      return id;
    });
  }

  addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]> {
    return this.#write(() => {
      const pkg = this.#package(packageId);
      if (pkg.state !== 'staged') {
        throw new SpinError(
          'state_conflict',
          `package ${packageId} is ${pkg.state}; commands can only be added before enqueue`,
          { details: { packageId, state: pkg.state } },
        );
      }
      const existing = new Set(this.#sql.packageCommandIds.all(packageId).map((r) => r.id));
      const specs = prepareCommands(existing, commands);
      specs.forEach((spec, i) => {
        this.#sql.insertCommand.run({
          package_id: packageId,
          id: spec.id,
          position: existing.size + i,
          node: spec.node,
          resource: spec.resource,
          action: spec.action,
          params: JSON.stringify(spec.params),
          needs: JSON.stringify(spec.needs),
          timeout_ms: spec.timeoutMs,
          retries: spec.retries,
          updated_at: this.#now,
        });
        this.#events.push({
          type: 'command',
          at: this.#now,
          packageId,
          commandId: spec.id,
          node: spec.node,
          resource: spec.resource,
          to: 'staged',
          attempt: 0,
          spec,
        });
      });
      this.#savePackage({ ...pkg, commands: pkg.commands + specs.length });
      return specs.map((s) => s.id);
    });
  }

  enqueue(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#package(packageId);
      if (pkg.state !== 'staged') return pkg.state;
      const rows = this.#sql.packageCommands.all(packageId);
      const specs = rows.map(specOf);
      checkPackageGraph(specs);
      let seq = this.#sql.maxSeq.get()?.seq ?? 0;
      const dependents = new Map<string, number>();
      for (const spec of specs) {
        for (const need of spec.needs) dependents.set(need, (dependents.get(need) ?? 0) + 1);
      }
      specs.forEach((spec, i) => {
        const state = enqueuedState(spec.needs);
        this.#sql.enqueueCommand.run({
          package_id: packageId,
          id: spec.id,
          seq: ++seq,
          state,
          pending_needs: spec.needs.length,
          dependents: dependents.get(spec.id) ?? 0,
          updated_at: this.#now,
        });
        for (const need of spec.needs) this.#sql.insertDep.run(packageId, need, spec.id);
        const row = rows[i];
        if (row)
          this.#commandEvent({ ...row, seq, state, pending_needs: spec.needs.length }, 'staged');
      });
      const next = { ...pkg, enqueued_at: this.#now, unfinished: specs.length };
      return this.#savePackage({ ...next, state: this.#derivedState(next) });
    });
  }

  cancel(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#package(packageId);
      if (terminalPackageStates.has(pkg.state)) return pkg.state;
      for (const row of this.#sql.packageCommands.all(packageId)) {
        if (terminalCommandStates.has(row.state)) continue;
        this.#setCommand(row, { state: 'cancelled', reason: 'the package was cancelled' });
      }
      return this.#savePackage({ ...pkg, state: 'cancelled', unfinished: 0 });
    });
  }

  lease(options: LeaseOptions): Promise<Lease | undefined> {
    return this.#write(() => this.#lease(options));
  }

  renew(ref: AttemptRef, leaseMs?: number): Promise<number> {
    return this.#write(() => {
      const row = this.#currentAttempt(ref);
      // A renewal never reaches past the deadline: a hung consumer times out even if it renews.
      const asked = this.#now + (leaseMs ?? this.#timings.leaseMs);
      const expires = Math.min(asked, row.deadline_at ?? asked);
      this.#sql.updateCommand.run({ ...row, lease_expires_at: expires, updated_at: this.#now });
      return expires;
    });
  }

  ack(ref: AttemptRef, result: AckResult, next?: LeaseOptions): Promise<AckReply> {
    return this.#write(() => {
      const row = this.#currentAttempt(ref);
      const after = result.ok
        ? this.#succeed(row, result.output)
        : this.#fail(row, errorOfAck(result), isRetryable(result));
      const outcome: AckOutcome =
        after.state === 'ready'
          ? { state: after.state, availableAt: after.available_at }
          : { state: after.state };
      const sameQueue = next?.node === row.node && next.resource === row.resource;
      const lease = next === undefined ? undefined : this.#lease(next, sameQueue);
      return lease === undefined ? { outcome } : { outcome, next: lease };
    });
  }

  release(ref: AttemptRef): Promise<void> {
    return this.#write(() => {
      const row = this.#currentAttempt(ref);
      this.#setCommand(row, {
        state: 'ready',
        reason: 'released by its consumer; delivered again',
      });
    });
  }

  sweep(): Promise<SweepReport> {
    return this.#write(() => {
      const report: SweepReport = { redelivered: 0, timedOut: 0, expired: 0 };
      for (const row of this.#sql.expiredLeases.all(this.#now)) {
        if (this.#expireLease(row) === 'redeliver') report.redelivered++;
        else report.timedOut++;
      }
      for (const pkg of this.#sql.expiredPackages.all(this.#now)) {
        this.#sql.deleteDeps.run(pkg.id);
        this.#sql.deleteCommands.run(pkg.id);
        this.#sql.deletePackage.run(pkg.id);
        this.#packageEvent(pkg, 'expired');
        report.expired++;
      }
      return report;
    });
  }

  recover(): Promise<number> {
    return this.#write(() => {
      const rows = this.#sql.allRunning.all();
      for (const row of rows) {
        this.#setCommand(row, {
          state: 'ready',
          reason: 'the broker restarted; delivered again',
        });
      }
      return rows.length;
    });
  }

  status(packageId: string): Promise<PackageStatus> {
    return Promise.resolve().then(() => this.#status(packageId));
  }

  #status(packageId: string): PackageStatus {
    this.#packages.clear();
    const pkg = this.#package(packageId);
    const commands = this.#sql.packageCommands.all(packageId).map(commandStatusOf);
    const failures: { commandId: string; error: WireError }[] = [];
    for (const c of commands) {
      if (c.state === 'failed' && c.error) failures.push({ commandId: c.id, error: c.error });
    }
    const status: PackageStatus = {
      id: pkg.id,
      name: pkg.name,
      state: pkg.state,
      createdAt: pkg.created_at,
      commands,
      failures,
    };
    if (pkg.enqueued_at !== null) status.enqueuedAt = pkg.enqueued_at;
    if (pkg.finished_at !== null) status.finishedAt = pkg.finished_at;
    return status;
  }

  listPackages(limit = 100): Promise<PackageSummary[]> {
    return Promise.resolve().then(() =>
      this.#sql.listPackages.all(limit).map((p) => ({
        id: p.id,
        name: p.name,
        state: p.state,
        createdAt: p.created_at,
        commands: p.commands,
        unfinished: p.unfinished,
      })),
    );
  }

  subscribe(listener: BrokerListener): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  stats(): { commits: number; operations: number } {
    return { ...this.#commits.stats };
  }

  close(): Promise<void> {
    this.#commits.close();
    this.#listeners.clear();
    if (this.#db.open) this.#db.close();
    return Promise.resolve();
  }

  /** Runs `op` in the next group commit, in its own savepoint, at one instant of the clock. */
  #write<T>(op: () => T): Promise<T> {
    return this.#commits.run(() => {
      const mark = this.#events.length;
      try {
        this.#now = this.#clock.now();
        return (this.#commits.isolating ? this.#savepoint(op) : op()) as T;
      } catch (error) {
        this.#events.length = mark;
        this.#packages.clear();
        throw error;
      }
    });
  }

  /**
   * Leases the head of a queue. `slotFree` says the caller just settled this queue's running
   * command, so no other can be running (one in flight per queue) and the lookup is skipped.
   */
  #lease(options: LeaseOptions, slotFree = false): Lease | undefined {
    const running = slotFree
      ? undefined
      : this.#sql.runningInQueue.get(options.node, options.resource);
    if (running !== undefined) {
      if ((running.lease_expires_at ?? 0) > this.#now) return undefined;
      this.#expireLease(running);
      if (this.#sql.runningInQueue.get(options.node, options.resource)) return undefined;
    }
    const head = this.#sql.headOfQueue.get(options.node, options.resource);
    if (head === undefined || head.available_at > this.#now) return undefined;
    const pkg = this.#package(head.package_id);
    const leased = this.#setCommand(head, {
      state: 'running',
      attempt: head.attempt + 1,
      attempt_id: randomUUID(),
      holder: options.holder ?? null,
      lease_expires_at: this.#now + (options.leaseMs ?? this.#timings.leaseMs),
      deadline_at: this.#now + head.timeout_ms + this.#timings.timeoutGraceMs,
      reason: null,
    });
    if (pkg.started === 0) {
      const next = { ...pkg, started: 1 };
      this.#savePackage({ ...next, state: this.#derivedState(next) });
    }
    return leaseOf(leased);
  }

  #succeed(row: CommandRow, output: unknown): CommandRow {
    const done = this.#setCommand(row, {
      state: 'succeeded',
      output: output === undefined ? null : JSON.stringify(output),
      error: null,
      reason: null,
    });
    const dependents = row.dependents === 0 ? [] : this.#sql.dependents.all(row.package_id, row.id);
    for (const { command_id } of dependents) {
      const dependent = this.#command(row.package_id, command_id);
      const pending = dependent.pending_needs - 1;
      if (dependent.state === 'waiting' && pending === 0) {
        this.#setCommand(dependent, { state: 'ready', pending_needs: 0 });
      } else {
        this.#sql.updateCommand.run({ ...dependent, pending_needs: pending });
      }
    }
    this.#finishOne(row.package_id, false);
    return done;
  }

  #fail(row: CommandRow, error: WireError, retryable: boolean): CommandRow {
    const failures = row.failures + 1;
    const decision = decideAfterFailure({
      failures,
      retries: row.retries,
      retryable,
      error,
      now: this.#now,
      backoff: this.#timings.backoff,
    });
    const errorText = JSON.stringify(error);
    if (decision.state === 'ready') {
      return this.#setCommand(row, {
        state: 'ready',
        failures,
        available_at: decision.availableAt,
        reason: decision.reason,
        error: errorText,
      });
    }
    const failed = this.#setCommand(row, {
      state: 'failed',
      failures,
      reason: decision.reason,
      error: errorText,
    });
    let skipped = 0;
    const frontier = [row.id];
    for (let id = frontier.pop(); id !== undefined; id = frontier.pop()) {
      for (const { command_id } of this.#sql.dependents.all(row.package_id, id)) {
        const dependent = this.#command(row.package_id, command_id);
        if (terminalCommandStates.has(dependent.state)) continue;
        this.#setCommand(dependent, { state: 'skipped', reason: skipReason(row.id) });
        skipped++;
        frontier.push(command_id);
      }
    }
    this.#finishOne(row.package_id, true, skipped);
    return failed;
  }

  /** Counts finished commands on the package and settles it when none is left. */
  #finishOne(packageId: string, failed: boolean, skipped = 0): void {
    const pkg = this.#package(packageId);
    const next = {
      ...pkg,
      unfinished: pkg.unfinished - 1 - skipped,
      failed: pkg.failed + (failed ? 1 + skipped : 0),
    };
    this.#savePackage({ ...next, state: this.#derivedState(next) });
  }

  #expireLease(row: CommandRow): 'redeliver' | 'timeout' {
    const kind = expiryKind(this.#now, row.deadline_at ?? 0);
    if (kind === 'timeout') this.#fail(row, timeoutError(specOf(row)), true);
    else this.#setCommand(row, { state: 'ready', reason: 'the lease ran out; delivered again' });
    return kind;
  }

  /** The row of a live attempt, or the refusal that fences off a stale one. */
  #currentAttempt(ref: AttemptRef): CommandRow {
    const row = this.#command(ref.packageId, ref.commandId);
    if (row.state === 'cancelled') {
      throw new SpinError('cancelled', `command ${ref.commandId} was cancelled`, {
        details: { ...ref },
      });
    }
    if (
      row.state !== 'running' ||
      row.attempt_id !== ref.attemptId ||
      (row.lease_expires_at ?? 0) <= this.#now
    ) {
      throw new SpinError(
        'stale_attempt',
        `attempt ${ref.attemptId} of command ${ref.commandId} no longer holds its lease`,
        { details: { ...ref, state: row.state } },
      );
    }
    return row;
  }

  /** Writes a command's new state (leases cleared unless given) and reports the transition. */
  #setCommand(row: CommandRow, change: Partial<CommandRow> & { state: CommandState }): CommandRow {
    const leaving = row.state === 'running' && change.state !== 'running';
    const next: CommandRow = {
      ...row,
      ...(leaving ? { attempt_id: null, holder: null, lease_expires_at: null } : {}),
      ...(leaving ? { deadline_at: null } : {}),
      ...change,
      active: terminalCommandStates.has(change.state) ? null : row.active,
      updated_at: this.#now,
    };
    this.#sql.updateCommand.run(next);
    this.#commandEvent(next, row.state);
    return next;
  }

  #commandEvent(row: CommandRow, from: CommandState): void {
    const event: BrokerEvent = {
      type: 'command',
      at: this.#now,
      packageId: row.package_id,
      commandId: row.id,
      node: row.node,
      resource: row.resource,
      from,
      to: row.state,
      attempt: row.attempt,
    };
    if (row.attempt_id !== null) event.attemptId = row.attempt_id;
    if (row.reason !== null) event.reason = row.reason;
    if (row.error !== null && row.state !== 'succeeded') {
      event.error = JSON.parse(row.error) as WireError;
    }
    if (row.output !== null && row.state === 'succeeded') event.output = JSON.parse(row.output);
    this.#events.push(event);
  }

  #savePackage(pkg: PackageRow): PackageState {
    const before = this.#package(pkg.id);
    const finished =
      terminalPackageStates.has(pkg.state) && !terminalPackageStates.has(before.state);
    const row = finished ? { ...pkg, finished_at: this.#now } : pkg;
    this.#sql.updatePackage.run(row);
    this.#packages.set(row.id, row);
    if (before.state !== row.state) this.#packageEvent(row, row.state, before.state);
    return row.state;
  }

  #packageEvent(pkg: PackageRow, to: PackageState, from: PackageState = pkg.state): void {
    this.#events.push({
      type: 'package',
      at: this.#now,
      packageId: pkg.id,
      name: pkg.name,
      from,
      to,
    });
  }

  #derivedState(pkg: PackageRow): PackageState {
    return packageStateOf({
      started: pkg.started === 1,
      unfinished: pkg.unfinished,
      failedOrSkipped: pkg.failed,
      cancelled: pkg.state === 'cancelled',
    });
  }

  #package(id: string): PackageRow {
    const cached = this.#packages.get(id);
    if (cached) return cached;
    const pkg = this.#sql.getPackage.get(id);
    if (pkg === undefined) {
      throw new SpinError('not_found', `no package ${id}`, { details: { packageId: id } });
    }
    this.#packages.set(id, pkg);
    return pkg;
  }

  #command(packageId: string, id: string): CommandRow {
    const row = this.#sql.getCommand.get({ package_id: packageId, id });
    if (row === undefined) {
      throw new SpinError('not_found', `no command ${id} in package ${packageId}`, {
        details: { packageId, commandId: id },
      });
    }
    return row;
  }
}
