import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { systemClock } from '../core/clock.js';
import { currentProcess, isGone } from '../core/process-identity.js';
import type { Clock } from '../core/clock.js';
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
  FinishedCommand,
  Lease,
  LeaseOptions,
  NewPackageOptions,
  PackageState,
  PackageOwner,
  PackageResults,
  PackageStatus,
  RecoveryReport,
  RefusalEvent,
} from './broker-types.js';
import { terminalCommandStates, terminalPackageStates } from './broker-types.js';
import type { AckReply, PackageSummary, QueueStore, SweepReport } from './queue-store.js';
import { commandStatusOf, specOf } from './sqlite-rows.js';
import { migrate, prepareStatements } from './sqlite-schema.js';
import type { CommandRow, PackageRow, Statements } from './sqlite-schema.js';
import { SqliteTransitions } from './sqlite-transitions.js';
import { storeFailure } from './store-failure.js';

/** Options of the SQLite queue store. */
export interface SqliteQueueStoreOptions {
  /** The database file (created with its directory's permissions); `:memory:` for throwaway. */
  path: string;
  clock?: Clock;
  timings?: Partial<BrokerTimings>;
  /**
   * `full` (default): a commit is on disk before the operations in it resolve. `normal` may lose
   * the last commits to a power loss (never to a crash of the process); for tests and scratch.
   */
  synchronous?: 'full' | 'normal';
  /** The process that owned packages created here belong to; this one (`spin`) by default. */
  owner?: PackageOwner;
  /** Whether an owner counts as gone (`isGone`: its process no longer runs); tests decide. */
  isGone?: (owner: PackageOwner) => boolean;
}

interface Pending {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The queue store on SQLite (better-sqlite3, WAL): the broker of one host, and its one source of
 * truth. Every operation is a transaction on plain tables. Operations that arrive in the same turn
 * of the event loop share one transaction and so one commit (group commit); each runs in its own
 * savepoint, so one that throws is undone alone. An operation resolves, and its events go out,
 * once its commit is on disk. Several processes may open one file (the CLI while no daemon runs):
 * SQLite's write lock serialises their transactions, and each reads what the others committed.
 */
export class SqliteQueueStore implements QueueStore {
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #clock: Clock;
  readonly #timings: BrokerTimings;
  readonly #listeners = new Set<BrokerListener>();
  readonly #batch: (ops: readonly Pending[]) => unknown[];
  #pending: Pending[] = [];
  #scheduled = false;
  #closed = false;
  readonly #t: SqliteTransitions;
  readonly #owner: PackageOwner;
  readonly #isGone: (owner: PackageOwner) => boolean;
  #stats = { commits: 0, operations: 0 };

  constructor(options: SqliteQueueStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#owner = options.owner ?? { ...currentProcess(), command: 'spin' };
    this.#isGone = options.isGone ?? isGone;
    this.#db = openStoreFile(options.path, options.synchronous ?? 'full');
    this.#sql = prepareStatements(this.#db);
    this.#t = new SqliteTransitions(this.#sql, this.#timings);
    const outcomes: unknown[] = [];
    const one = this.#db.transaction((op: () => unknown) => op());
    this.#batch = (ops) => {
      outcomes.length = 0;
      this.#db
        .transaction(() => {
          for (const pending of ops) {
            const events = this.#t.events.length;
            try {
              this.#t.now = this.#clock.now();
              outcomes.push({ value: one(pending.op) });
            } catch (error) {
              this.#t.events.length = events;
              const refusal = refusalOf(error, this.#t.now);
              if (refusal !== undefined) this.#t.events.push(refusal);
              outcomes.push({ error });
            }
          }
        })
        .immediate();
      return outcomes;
    };
  }

  createPackage(options: NewPackageOptions = {}): Promise<string> {
    return this.#write(() => {
      const id = `p-${randomBytes(6).toString('hex')}`;
      const name = options.name ?? id;
      const owner = options.owned === true ? this.#owner : undefined;
      this.#sql.insertPackage.run({
        id,
        name,
        state: 'staged',
        created_at: this.#t.now,
        ttl_ms: options.ttlMs ?? this.#timings.packageTtlMs,
        enqueued_at: null,
        finished_at: null,
        commands: 0,
        unfinished: 0,
        failed: 0,
        started: 0,
        owner_pid: owner?.pid ?? null,
        owner_host: owner?.host ?? null,
        owner_start: owner?.startTime ?? null,
        owner_command: owner?.command ?? null,
        meta: options.meta === undefined ? null : JSON.stringify(options.meta),
      });
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
      const specs = prepareCommands(new Set(this.#sql.commandIds.all(packageId)), commands);
      specs.forEach((spec, i) => {
        this.#sql.insertCommand.run(
          packageId,
          spec.id,
          pkg.commands + i,
          spec.node,
          spec.resource,
          spec.action,
          JSON.stringify(spec.params),
          JSON.stringify(spec.needs),
          spec.timeoutMs,
          spec.retries,
          this.#t.now,
        );
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
      this.#t.savePackage(pkg, { commands: pkg.commands + specs.length });
      return specs.map((s) => s.id);
    });
  }

  enqueue(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
      if (pkg.state !== 'staged') return pkg.state;
      if (pkg.owner_pid !== null) this.#refuseSecondOwned(pkg);
      const rows = this.#sql.packageCommands.all(packageId);
      const graph = rows.map((row) => ({ id: row.id, needs: JSON.parse(row.needs) as string[] }));
      checkPackageGraph(graph);
      let seq = Number(this.#sql.getMeta.get('next_seq') ?? 1);
      rows.forEach((row, i) => {
        const needs = graph[i]?.needs ?? [];
        for (const need of needs) this.#sql.insertDep.run(packageId, need, row.id);
        this.#t.setCommand(row, {
          state: enqueuedState(needs),
          seq: seq++,
          pending_needs: needs.length,
        });
      });
      this.#sql.setMeta.run('next_seq', String(seq));
      return this.#t.savePackage(pkg, {
        state: 'enqueued',
        enqueued_at: this.#t.now,
        unfinished: rows.length,
      });
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
      return this.#t.savePackage(pkg, { state: 'cancelled', unfinished: 0 });
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
      this.#t.update(row, { lease_expires_at: expires, updated_at: this.#t.now });
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
      const lease = next === undefined ? undefined : this.#t.lease(next);
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
      for (const row of this.#sql.running.all()) {
        if ((row.lease_expires_at ?? 0) > this.#t.now) continue;
        if (this.#t.expireLease(row) === 'redeliver') report.redelivered++;
        else report.timedOut++;
      }
      for (const pkg of this.#sql.expiredPackages.all(this.#t.now)) {
        this.#t.deletePackage(pkg.id);
        this.#t.packageEvent(pkg, 'expired');
        report.expired++;
      }
      for (const pkg of this.#sql.finishedBefore.all(
        this.#t.now - this.#timings.retainFinishedMs,
      )) {
        this.#t.deletePackage(pkg.id);
        report.removed++;
      }
      return report;
    });
  }

  recover(): Promise<RecoveryReport> {
    return this.#write(() => {
      const report: RecoveryReport = { redelivered: 0, cancelled: [] };
      for (const pkg of this.#sql.unfinishedOwned.all()) {
        const owner = ownerOf(pkg);
        if (owner === undefined || !this.#isGone(owner)) continue;
        const interrupted: string[] = [];
        const finished: FinishedCommand[] = [];
        let notStarted = 0;
        for (const row of this.#sql.packageCommands.all(pkg.id)) {
          if (row.state === 'succeeded' || row.state === 'failed' || row.state === 'skipped') {
            finished.push(finishedOf(row, row.state));
          }
          if (terminalCommandStates.has(row.state)) continue;
          const ran = row.state === 'running';
          if (ran) interrupted.push(row.id);
          else notStarted++;
          this.#t.setCommand(row, {
            state: 'cancelled',
            reason: ran
              ? `${owner.command} (pid ${String(owner.pid)}) died while it ran: its outcome is unknown`
              : `${owner.command} (pid ${String(owner.pid)}) died before it ran`,
          });
        }
        this.#t.savePackage(pkg, { state: 'cancelled', unfinished: 0 });
        report.cancelled.push({
          packageId: pkg.id,
          name: pkg.name,
          owner,
          createdAt: pkg.created_at,
          notStarted,
          interrupted,
          ...(pkg.meta === null ? {} : { meta: JSON.parse(pkg.meta) as Record<string, unknown> }),
          finished,
        });
      }
      for (const row of this.#sql.running.all()) {
        this.#t.setCommand(row, {
          state: 'ready',
          reason: 'the broker restarted; delivered again',
        });
        report.redelivered++;
      }
      return report;
    });
  }

  results(packageId: string): Promise<PackageResults> {
    return this.#read(() => {
      const pkg = this.#t.package(packageId);
      const finished: FinishedCommand[] = [];
      for (const row of this.#sql.packageCommands.all(packageId)) {
        if (row.state === 'succeeded' || row.state === 'failed' || row.state === 'skipped') {
          finished.push(finishedOf(row, row.state));
        }
      }
      return {
        packageId,
        name: pkg.name,
        state: pkg.state,
        ...(pkg.meta === null ? {} : { meta: JSON.parse(pkg.meta) as Record<string, unknown> }),
        finished,
      };
    });
  }

  claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined> {
    return this.#write(() => {
      const key = `state:${path}`;
      const known = this.#sql.getMeta.get(key);
      if (known !== undefined && known !== lineage && !adopt) return known;
      if (known !== lineage) this.#sql.setMeta.run(key, lineage);
      return undefined;
    });
  }

  status(packageId: string): Promise<PackageStatus> {
    return this.#read(() => {
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
    });
  }

  listPackages(limit = 100): Promise<PackageSummary[]> {
    return this.#read(() =>
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
    return { ...this.#stats };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    this.#commit();
    this.#listeners.clear();
    this.#db.close();
    return Promise.resolve();
  }

  /** Refuses to enqueue an owned package while another of its name runs (its owner lives). */
  #refuseSecondOwned(pkg: PackageRow): void {
    const name = pkg.name;
    const other = this.#sql.unfinishedOwnedNamed.get(name);
    const owner = other === undefined ? undefined : ownerOf(other);
    if (other === undefined || owner === undefined) return;
    const since = new Date(other.created_at).toISOString();
    throw new SpinError(
      'state_conflict',
      `package ${name} is still being run by ${owner.command} (pid ${String(owner.pid)} on ${owner.host}) since ${since}`,
      {
        details: { packageId: other.id, name, owner: { ...owner } },
        suggestions: [
          'Wait for it to finish, or stop that spin (Ctrl-C cancels what has not run).',
        ],
      },
    );
  }

  // Transactions

  /** Runs `op` in the next transaction, at one instant of the clock; resolves once committed. */
  #write<T>(op: () => T): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new SpinError('unreachable', 'The broker store is closed.', { retryable: true }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#commit();
      });
    });
  }

  /** A read of what is committed, after the writes queued before it. */
  #read<T>(op: () => T): Promise<T> {
    return this.#write(op);
  }

  /**
   * Commits the queued operations in one transaction. When the commit itself fails (the disk is
   * full, the file locked past the timeout), nothing of them is kept and each rejects with why.
   */
  #commit(): void {
    this.#scheduled = false;
    const batch = this.#pending;
    if (batch.length === 0) return;
    this.#pending = [];
    let outcomes: unknown[];
    try {
      outcomes = this.#batch(batch);
    } catch (error) {
      this.#t.events = [];
      const failure = storeFailure(error, this.#db.name);
      for (const pending of batch) pending.reject(failure);
      return;
    }
    this.#stats.commits++;
    this.#stats.operations += batch.length;
    const events = this.#t.events;
    this.#t.events = [];
    for (const event of events) for (const listener of this.#listeners) listener(event);
    batch.forEach((pending, i) => {
      const outcome = outcomes[i] as { value?: unknown; error?: unknown };
      if ('error' in outcome) pending.reject(outcome.error);
      else pending.resolve(outcome.value);
    });
  }
}

/**
 * Opens the store's file in WAL mode and brings its tables to this schema. A file that cannot be
 * opened or written (a full disk) fails with the error storeFailure names, and is closed again.
 */
function openStoreFile(path: string, synchronous: 'full' | 'normal'): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    const opened = db;
    opened
      .transaction(() => {
        migrate(opened);
      })
      .immediate();
    return opened;
  } catch (error) {
    db?.close();
    throw storeFailure(error, path);
  }
}

/** The event of a refused ack, renew or release (fencing), for the audit log. */
function refusalOf(error: unknown, at: number): RefusalEvent | undefined {
  if (!(error instanceof SpinError)) return undefined;
  if (error.code !== 'stale_attempt' && error.code !== 'cancelled') return undefined;
  const { packageId, commandId, attemptId } = error.details;
  if (typeof packageId !== 'string' || typeof commandId !== 'string') return undefined;
  if (typeof attemptId !== 'string') return undefined;
  return {
    type: 'refused',
    at,
    packageId,
    commandId,
    attemptId,
    code: error.code,
    reason: error.message,
  };
}

/** A command row that ended, as a recovery hands it back. */
function finishedOf(row: CommandRow, state: FinishedCommand['state']): FinishedCommand {
  const status = commandStatusOf(row);
  return {
    spec: specOf(row),
    state,
    attempt: row.attempt,
    finishedAt: row.updated_at,
    ...(status.output === undefined ? {} : { output: status.output }),
    ...(status.error === undefined ? {} : { error: status.error }),
    ...(status.reason === undefined ? {} : { reason: status.reason }),
  };
}

/** The owner recorded on a package row, if it has one. */
function ownerOf(pkg: PackageRow): PackageOwner | undefined {
  if (pkg.owner_pid === null || pkg.owner_host === null) return undefined;
  return {
    pid: pkg.owner_pid,
    host: pkg.owner_host,
    startTime: pkg.owner_start ?? 0,
    command: pkg.owner_command ?? 'spin',
  };
}
