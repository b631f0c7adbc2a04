import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import {
  checkPackageGraph,
  defaultTimings,
  enqueuedState,
  errorOfAck,
  isRetryable,
  prepareCommands,
} from './broker-semantics.js';
import type { BrokerTimings } from './broker-semantics.js';
import type {
  AckOutcome,
  AckResult,
  AttemptRef,
  BrokerListener,
  CommandInput,
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
import { SqliteTransitions } from './sqlite-transitions.js';
import type { AckReply, PackageSummary, QueueStore, SweepReport } from './queue-store.js';
import { commandStatusOf, specOf } from './sqlite-rows.js';
import { migrate, prepareStatements } from './sqlite-schema.js';
import type { Statements } from './sqlite-schema.js';

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
  readonly #t: SqliteTransitions;

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
    this.#t = new SqliteTransitions(this.#sql, this.#timings);
    this.#savepoint = this.#db.transaction((op: () => unknown) => op());
    const batch = this.#db.transaction((ops: (() => void)[]) => {
      for (const op of ops) op();
    });
    this.#commits = new GroupCommit((ops) => {
      this.#t.events = [];
      this.#t.packages.clear();
      try {
        batch.immediate(ops);
      } catch (error) {
        this.#t.events = [];
        this.#t.packages.clear();
        throw error;
      }
      const events = this.#t.events;
      this.#t.events = [];
      for (const event of events) for (const listener of this.#listeners) listener(event);
    });
  }

  createPackage(options: NewPackageOptions = {}): Promise<string> {
    return this.#write(() => {
      const id = `p-${randomBytes(6).toString('hex')}`;
      const name = options.name ?? id;
      this.#sql.insertPackage.run(
        id,
        name,
        this.#t.now,
        options.ttlMs ?? this.#timings.packageTtlMs,
      );
      this.#t.events.push({ type: 'package', at: this.#t.now, packageId: id, name, to: 'staged' });
      return id;
    });
  }

  addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
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
          updated_at: this.#t.now,
        });
        this.#t.events.push({
          type: 'command',
          at: this.#t.now,
          packageId,
          commandId: spec.id,
          node: spec.node,
          resource: spec.resource,
          to: 'staged',
          attempt: 0,
          spec,
        });
      });
      this.#t.savePackage({ ...pkg, commands: pkg.commands + specs.length });
      return specs.map((s) => s.id);
    });
  }

  enqueue(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
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
          updated_at: this.#t.now,
        });
        for (const need of spec.needs) this.#sql.insertDep.run(packageId, need, spec.id);
        const row = rows[i];
        if (row)
          this.#t.commandEvent({ ...row, seq, state, pending_needs: spec.needs.length }, 'staged');
      });
      const next = { ...pkg, enqueued_at: this.#t.now, unfinished: specs.length };
      return this.#t.savePackage({ ...next, state: this.#t.derivedState(next) });
    });
  }

  cancel(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
      if (terminalPackageStates.has(pkg.state)) return pkg.state;
      for (const row of this.#sql.packageCommands.all(packageId)) {
        if (terminalCommandStates.has(row.state)) continue;
        this.#t.setCommand(row, { state: 'cancelled', reason: 'the package was cancelled' });
      }
      return this.#t.savePackage({ ...pkg, state: 'cancelled', unfinished: 0 });
    });
  }

  lease(options: LeaseOptions): Promise<Lease | undefined> {
    return this.#write(() => this.#t.lease(options));
  }

  renew(ref: AttemptRef, leaseMs?: number): Promise<number> {
    return this.#write(() => {
      const row = this.#t.currentAttempt(ref);
      // A renewal never reaches past the deadline: a hung consumer times out even if it renews.
      const asked = this.#t.now + (leaseMs ?? this.#timings.leaseMs);
      const expires = Math.min(asked, row.deadline_at ?? asked);
      this.#sql.updateCommand.run({ ...row, lease_expires_at: expires, updated_at: this.#t.now });
      return expires;
    });
  }

  ack(ref: AttemptRef, result: AckResult, next?: LeaseOptions): Promise<AckReply> {
    return this.#write(() => {
      const row = this.#t.currentAttempt(ref);
      const after = result.ok
        ? this.#t.succeed(row, result.output)
        : this.#t.fail(row, errorOfAck(result), isRetryable(result));
      const outcome: AckOutcome =
        after.state === 'ready'
          ? { state: after.state, availableAt: after.available_at }
          : { state: after.state };
      const sameQueue = next?.node === row.node && next.resource === row.resource;
      const lease = next === undefined ? undefined : this.#t.lease(next, sameQueue);
      return lease === undefined ? { outcome } : { outcome, next: lease };
    });
  }

  release(ref: AttemptRef): Promise<void> {
    return this.#write(() => {
      const row = this.#t.currentAttempt(ref);
      this.#t.setCommand(row, {
        state: 'ready',
        reason: 'released by its consumer; delivered again',
      });
    });
  }

  sweep(): Promise<SweepReport> {
    return this.#write(() => {
      const report: SweepReport = { redelivered: 0, timedOut: 0, expired: 0, removed: 0 };
      for (const row of this.#sql.expiredLeases.all(this.#t.now)) {
        if (this.#t.expireLease(row) === 'redeliver') report.redelivered++;
        else report.timedOut++;
      }
      for (const pkg of this.#sql.expiredPackages.all(this.#t.now)) {
        this.#sql.deleteDeps.run(pkg.id);
        this.#sql.deleteCommands.run(pkg.id);
        this.#sql.deletePackage.run(pkg.id);
        this.#t.packageEvent(pkg, 'expired');
        report.expired++;
      }
      const retainedSince = this.#t.now - this.#timings.retainFinishedMs;
      for (const pkg of this.#sql.finishedBefore.all(retainedSince)) {
        this.#sql.deleteDeps.run(pkg.id);
        this.#sql.deleteCommands.run(pkg.id);
        this.#sql.deletePackage.run(pkg.id);
        this.#t.packages.delete(pkg.id);
        report.removed++;
      }
      return report;
    });
  }

  recover(): Promise<number> {
    return this.#write(() => {
      const rows = this.#sql.allRunning.all();
      for (const row of rows) {
        this.#t.setCommand(row, {
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
    this.#t.packages.clear();
    const pkg = this.#t.package(packageId);
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
      const mark = this.#t.events.length;
      try {
        this.#t.now = this.#clock.now();
        return (this.#commits.isolating ? this.#savepoint(op) : op()) as T;
      } catch (error) {
        this.#t.events.length = mark;
        this.#t.packages.clear();
        throw error;
      }
    });
  }
}
