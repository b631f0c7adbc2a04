import { randomBytes } from 'node:crypto';
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
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
  BrokerEvent,
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
import type {
  AckReply,
  PackageSummary,
  QueueStore,
  ReadyCommand,
  SweepReport,
} from './queue-store.js';
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
   * `full` (default): an operation that changes what the broker promised (a package, an ack, a
   * cancel) resolves once its commit is on disk. `normal` may lose the last commits to a power
   * loss (never to a crash of the process); for tests and scratch.
   */
  synchronous?: 'full' | 'normal';
  /** The process that owned packages created here belong to; this one (`spin`) by default. */
  owner?: PackageOwner;
  /** Whether an owner counts as gone (`isGone`: its process no longer runs); tests decide. */
  isGone?: (owner: PackageOwner) => boolean;
}

interface Pending {
  op: () => unknown;
  /** Resolves only once its commit is on disk (see `SqliteQueueStore`). */
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * The queue store on SQLite (better-sqlite3, WAL): the broker of one host, and its one source of
 * truth. Every operation is a transaction on plain tables. Operations that arrive in the same turn
 * of the event loop share one transaction and so one commit; each runs in its own savepoint, so
 * one that throws is undone alone. A commit is written to the WAL without waiting for the disk
 * (`synchronous = NORMAL`: a crash of the process loses nothing); what makes it durable is one
 * fdatasync of the WAL, run off the event loop, that covers every commit made before it began
 * (group commit: while one sync runs, the next turns' commits gather for the next one). Durable
 * operations (packages, acks, cancels) resolve, and every commit's events go out, once a sync
 * covers their commit; a lease, renewal, release or read resolves at its commit, so an agent
 * starts its next command while the last result goes to disk. A power loss may so lose a lease,
 * and the command runs again: as it would had the agent died with the machine. Several processes
 * may open one file (the CLI while no daemon runs): SQLite's write lock serialises their
 * transactions, and each reads what the others committed.
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
  /** The WAL's descriptor for syncing it; undefined when commits are not synced (see options). */
  readonly #wal: number | undefined;
  /** Commits written but not yet covered by a sync: what waits on them. */
  #unsynced: Unsynced[] = [];
  #syncing = false;
  /** Why the store can take nothing more: a sync failed, so what it covered may not be on disk. */
  #failure: SpinError | undefined;
  readonly #t: SqliteTransitions;
  readonly #owner: PackageOwner;
  readonly #isGone: (owner: PackageOwner) => boolean;
  #stats = { commits: 0, operations: 0 };

  constructor(options: SqliteQueueStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#owner = options.owner ?? { ...currentProcess(), command: 'spin' };
    this.#isGone = options.isGone ?? isGone;
    this.#db = openStoreFile(options.path);
    this.#wal =
      (options.synchronous ?? 'full') === 'full' && !this.#db.memory
        ? openSync(`${this.#db.name}-wal`, 'r')
        : undefined;
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
      });
      if (options.meta !== undefined) {
        this.#sql.insertPackageMeta.run(id, JSON.stringify(options.meta));
      }
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
      if (this.#pastTtl(pkg)) {
        // Expired, though no sweep has removed it yet: as if one had.
        this.#t.deletePackage(pkg.id);
        this.#t.packageEvent(pkg, 'expired');
        return 'expired';
      }
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
    return this.#fast(() => this.#t.lease(options));
  }

  renew(ref: AttemptRef, leaseMs?: number): Promise<number> {
    return this.#fast(() => {
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
    return this.#fast(() => {
      const row = this.#t.currentAttempt(ref);
      this.#t.setCommand(row, {
        state: 'ready',
        reason: 'released by its consumer; delivered again',
      });
    });
  }

  readyElsewhere(node: string): Promise<ReadyCommand[]> {
    return Promise.resolve(
      this.#sql.readyElsewhere.all(node).map((row) => {
        const ready: ReadyCommand = {
          packageId: row.package_id,
          commandId: row.id,
          node: row.node,
          resource: row.resource,
        };
        if (row.reason !== null) ready.reason = row.reason;
        return ready;
      }),
    );
  }

  holdReason(packageId: string, commandId: string, reason: string): Promise<void> {
    return this.#fast(() => {
      const row = this.#t.command(packageId, commandId);
      if (row.state !== 'ready' || row.reason === reason) return;
      this.#t.setCommand(row, { state: 'ready', reason });
    });
  }

  abandon(packageId: string, commandId: string, error: WireError): Promise<boolean> {
    return this.#write(() => {
      const row = this.#t.command(packageId, commandId);
      if (row.state !== 'ready') return false;
      this.#t.fail(row, error, false);
      return true;
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
          const reason = ran
            ? `${owner.command} (pid ${String(owner.pid)}) died while it ran: its outcome is unknown`
            : `${owner.command} (pid ${String(owner.pid)}) died before it ran`;
          this.#t.setCommand(row, { state: 'cancelled', reason });
          // What it made, if anything, is spin's: the state records that it ran.
          if (ran)
            finished.push({ ...finishedOf(row, 'cancelled'), reason, finishedAt: this.#t.now });
        }
        this.#t.savePackage(pkg, { state: 'cancelled', unfinished: 0 });
        report.cancelled.push({
          packageId: pkg.id,
          name: pkg.name,
          owner,
          createdAt: pkg.created_at,
          notStarted,
          interrupted,
          ...(pkg.meta == null ? {} : { meta: JSON.parse(pkg.meta) as Record<string, unknown> }),
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
      const meta = this.#sql.packageMeta.get(packageId) ?? null;
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
        ...(meta === null ? {} : { meta: JSON.parse(meta) as Record<string, unknown> }),
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
      // A staged package past its TTL is expired, whether or not a sweep has removed it yet.
      if (this.#pastTtl(pkg)) pkg.state = 'expired';
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
        state: this.#pastTtl(p) ? 'expired' : p.state,
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

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#commit();
    while (this.#syncing) await this.#synced();
    if (this.#unsynced.length > 0) {
      try {
        if (this.#wal !== undefined) fdatasyncSync(this.#wal);
        this.#release(this.#unsynced.splice(0));
      } catch (error) {
        this.#fail(error);
      }
    }
    this.#listeners.clear();
    if (this.#wal !== undefined) closeSync(this.#wal);
    this.#db.close();
  }

  /** Whether `pkg` is staged and its TTL has passed (the next sweep removes it). */
  #pastTtl(pkg: PackageRow): boolean {
    return pkg.state === 'staged' && pkg.created_at + pkg.ttl_ms <= this.#clock.now();
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

  /**
   * Runs `op` in the next transaction, at one instant of the clock; resolves once a sync of the
   * WAL covers its commit.
   */
  #write<T>(op: () => T, durable = true): Promise<T> {
    if (this.#closed || this.#failure !== undefined) {
      return Promise.reject(
        this.#failure ??
          new SpinError('unreachable', 'The broker store is closed.', { retryable: true }),
      );
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ op, durable, resolve: resolve as (value: unknown) => void, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      setImmediate(() => {
        this.#commit();
      });
    });
  }

  /** Runs `op` like `#write`, but resolves at its commit, before the sync (see the class). */
  #fast<T>(op: () => T): Promise<T> {
    return this.#write(op, false);
  }

  /** A read of what is committed, after the writes queued before it. */
  #read<T>(op: () => T): Promise<T> {
    return this.#fast(op);
  }

  /**
   * Commits the queued operations in one transaction; fast ones settle at once, the rest and the
   * commit's events once a sync covers it. When the commit itself fails (the disk is full, the
   * file locked past the timeout), nothing of them is kept and each rejects with why.
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
    const commit: Unsynced = { events: this.#t.events, waiting: [] };
    this.#t.events = [];
    batch.forEach((pending, i) => {
      const outcome = outcomes[i] as Outcome;
      if (pending.durable && this.#wal !== undefined) commit.waiting.push({ pending, outcome });
      else settle(pending, outcome);
    });
    if (this.#wal === undefined) {
      this.#release([commit]);
      return;
    }
    this.#unsynced.push(commit);
    this.#sync();
  }

  /**
   * Syncs the WAL unless a sync runs (then the next one starts when it ends), and settles the
   * commits it covers. A sync that fails fails the store: nothing it covered may be relied on.
   */
  #sync(): void {
    const wal = this.#wal;
    if (this.#syncing || wal === undefined || this.#unsynced.length === 0) return;
    this.#syncing = true;
    const covered = this.#unsynced.splice(0);
    fdatasync(wal, (error) => {
      this.#syncing = false;
      if (error) this.#fail(error, covered);
      else this.#release(covered);
      for (const wake of this.#onSynced.splice(0)) wake();
      if (this.#failure === undefined) this.#sync();
    });
  }

  readonly #onSynced: (() => void)[] = [];

  /** Resolves when the sync in flight ends. */
  #synced(): Promise<void> {
    return new Promise((resolve) => this.#onSynced.push(resolve));
  }

  /** Sends the commits' events, in order, and settles what waited on them. */
  #release(commits: readonly Unsynced[]): void {
    for (const { events, waiting } of commits) {
      for (const event of events) for (const listener of this.#listeners) listener(event);
      for (const { pending, outcome } of waiting) settle(pending, outcome);
    }
  }

  /**
   * After a failed sync: what waited on it, and everything not yet synced or asked later, fails
   * with why; their events never go out.
   */
  #fail(error: unknown, covered: readonly Unsynced[] = []): void {
    const failure = storeFailure(error, this.#db.name);
    this.#failure = failure;
    for (const commit of [...covered, ...this.#unsynced.splice(0)]) {
      for (const { pending } of commit.waiting) pending.reject(failure);
    }
  }
}

type Outcome = { value: unknown } | { error: unknown };

/** A commit written but not yet synced: its events, and the durable operations in it. */
interface Unsynced {
  events: BrokerEvent[];
  waiting: { pending: Pending; outcome: Outcome }[];
}

function settle(pending: Pending, outcome: Outcome): void {
  if ('error' in outcome) pending.reject(outcome.error);
  else pending.resolve(outcome.value);
}

/**
 * Opens the store's file in WAL mode and brings its tables to this schema. A file that cannot be
 * opened or written (a full disk) fails with the error storeFailure names, and is closed again.
 */
function openStoreFile(path: string): Database.Database {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 10_000 });
    db.pragma('journal_mode = WAL');
    // Commits are made durable by syncing the WAL (see SqliteQueueStore); checkpoints sync
    // what they copy before the WAL is reused.
    db.pragma('synchronous = NORMAL');
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
