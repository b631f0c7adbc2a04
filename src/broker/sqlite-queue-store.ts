import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import {
  checkPackageGraph,
  defaultTimings,
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
import { systemClock } from '../core/clock.js';
import type { Clock } from '../core/clock.js';
import { GroupCommit } from './group-commit.js';
import { WalSync } from './wal-sync.js';
import type { AckReply, PackageSummary, QueueStore, SweepReport } from './queue-store.js';
import { commandStatusOf } from './sqlite-rows.js';
import { commandValues, migrate, packageValues, prepareStatements } from './sqlite-schema.js';
import type { Statements } from './sqlite-schema.js';
import { StoreTables } from './store-tables.js';
import type { TablePatch } from './store-tables.js';
import { StoreTransitions } from './store-transitions.js';

/** Options of the SQLite queue store. */
export interface SqliteQueueStoreOptions {
  /** The database file (created with its directory's permissions); `:memory:` for throwaway. */
  path: string;
  clock?: Clock;
  timings?: Partial<BrokerTimings>;
  /**
   * `full` (default): an operation resolves once its commit is flushed to disk (`WalSync`).
   * `normal` skips the flush: a power loss may undo the last commits; for tests and scratch.
   */
  synchronous?: 'full' | 'normal';
}

/**
 * When the journal is folded back into the snapshot: once the store has been idle this long, and
 * in any case once this many rows changed (or the journal holds this many commits). Folding
 * rewrites every row changed since the last snapshot, about 8 µs a row, in one transaction on the
 * event loop: doing it between bursts keeps that work off the path of acks, and the bound keeps a
 * busy store's pause to about 150 ms.
 */
const snapshotWhenIdleMs = 200;
const snapshotEvery = 20_000;

/**
 * The queue store on SQLite (better-sqlite3, WAL): the broker of one host. The tables live in
 * memory (`StoreTables`) and every commit appends their changes to the journal table as one row;
 * operations that arrive in the same turn of the event loop share that row and its fsync (group
 * commit). Several processes may open the same file (the CLI while no daemon runs): each write
 * batch is `BEGIN IMMEDIATE` and first replays the journal rows other connections committed, so
 * the rules hold across them.
 */
export class SqliteQueueStore implements QueueStore {
  readonly #db: Database.Database;
  readonly #sql: Statements;
  readonly #clock: Clock;
  readonly #timings: BrokerTimings;
  readonly #commits: GroupCommit;
  readonly #listeners = new Set<BrokerListener>();
  readonly #walSync: WalSync | undefined;
  #tables = new StoreTables();
  #t: StoreTransitions;
  /** The last journal row applied to the tables. */
  #applied = 0;
  /** `PRAGMA data_version` when the journal was last read: unchanged means nothing new. */
  #version = -1;
  #sinceSnapshot = 0;
  /** The last journal row known to be flushed to disk. */
  #durableSeq = 0;
  /** Armed while the journal holds rows the snapshot lacks; fires once commits pause. */
  #idle: NodeJS.Timeout | undefined;
  #lastCommit = 0;

  constructor(options: SqliteQueueStoreOptions) {
    this.#clock = options.clock ?? systemClock;
    this.#timings = { ...defaultTimings, ...options.timings };
    this.#db = new Database(options.path, { timeout: 10_000 });
    this.#db.pragma('journal_mode = WAL');
    // Commits are flushed by WalSync, off the event loop, rather than by SQLite at each commit.
    this.#db.pragma('synchronous = NORMAL');
    this.#walSync =
      options.synchronous === 'normal' || this.#db.memory ? undefined : new WalSync(options.path);
    this.#db
      .transaction(() => {
        migrate(this.#db);
      })
      .immediate();
    this.#sql = prepareStatements(this.#db);
    this.#t = new StoreTransitions(this.#tables, this.#timings);
    const begin = this.#db.prepare('BEGIN IMMEDIATE');
    const commit = this.#db.prepare('COMMIT');
    const walSync = this.#walSync;
    this.#commits = new GroupCommit(
      {
        begin: () => {
          try {
            begin.run();
          } catch (error) {
            if (isBusy(error)) return false;
            throw error;
          }
          try {
            this.#catchUp();
          } catch (error) {
            this.#abandon();
            throw error;
          }
          this.#tables.batchSeq = this.#applied + 1;
          this.#t.events = [];
          return true;
        },
        commit: () => {
          const events = this.#t.events;
          this.#t.events = [];
          let patches: TablePatch[];
          try {
            patches = this.#tables.takePatches();
            if (patches.length > 0) {
              this.#sql.appendJournal.run(this.#applied + 1, JSON.stringify(patches));
            }
            commit.run();
            if (patches.length > 0) {
              this.#applied++;
              this.#sinceSnapshot++;
            }
          } catch (error) {
            // The tables may hold what never reached the file: read them back from it.
            this.#abandon();
            throw error;
          }
          const seq = this.#applied;
          if (Math.max(this.#tables.dirtyRows, this.#sinceSnapshot) >= snapshotEvery) {
            this.#snapshot();
          }
          if (this.#sinceSnapshot > 0) this.#snapshotWhenIdle();
          return {
            wrote: patches.length > 0,
            durable: () => {
              this.#durableSeq = Math.max(this.#durableSeq, seq);
              for (const event of events) for (const listener of this.#listeners) listener(event);
            },
          };
        },
      },
      walSync &&
        ((done, inline) => {
          walSync.afterCommit(done, inline);
        }),
    );
    this.#load();
    if (this.#sinceSnapshot > 0) this.#snapshot();
    // From now on a write that finds the lock taken tries again later (GroupCommit) rather than
    // sleeping on the event loop, where it could wait for a flush of this very process.
    this.#db.pragma('busy_timeout = 0');
  }

  createPackage(options: NewPackageOptions = {}): Promise<string> {
    return this.#write(() => {
      const id = `p-${randomBytes(6).toString('hex')}`;
      const name = options.name ?? id;
      this.#tables.insertPackage({
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
      const existing = this.#tables.packageCommands(packageId);
      const specs = prepareCommands(existing, commands);
      this.#tables.addCommands(packageId, this.#t.now, existing.size, specs);
      for (const spec of specs) {
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
      }
      this.#t.savePackage(pkg, { commands: pkg.commands + specs.length });
      return specs.map((s) => s.id);
    });
  }

  enqueue(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
      if (pkg.state !== 'staged') return pkg.state;
      const graph = this.#tables.stagedGraph(packageId);
      checkPackageGraph(graph);
      for (const row of this.#tables.enqueuePackage(packageId, this.#t.now, graph)) {
        this.#t.commandEvent(row, 'staged');
      }
      return this.#t.savePackage(pkg, {
        state: 'enqueued',
        enqueued_at: this.#t.now,
        unfinished: graph.length,
      });
    });
  }

  cancel(packageId: string): Promise<PackageState> {
    return this.#write(() => {
      const pkg = this.#t.package(packageId);
      if (terminalPackageStates.has(pkg.state)) return pkg.state;
      for (const row of this.#tables.packageCommands(packageId).values()) {
        if (terminalCommandStates.has(row.state)) continue;
        this.#t.setCommand(row, { state: 'cancelled', reason: 'the package was cancelled' });
      }
      return this.#t.savePackage(pkg, { state: 'cancelled', unfinished: 0 });
    });
  }

  /**
   * Leases resolve once written, before the flush that makes them durable: a lease lost to a
   * crash is delivered again anyway (`recover`). Unless the command only became ready in a commit
   * not yet durable (its needs' success, its enqueue): then the lease waits for that flush, so
   * nothing runs on a change a power loss could still undo.
   */
  lease(options: LeaseOptions): Promise<Lease | undefined> {
    return this.#write(
      () => this.#t.lease(options),
      (lease) =>
        lease === undefined ||
        this.#tables.readySince(lease.packageId, lease.commandId) <= this.#durableSeq,
    );
  }

  renew(ref: AttemptRef, leaseMs?: number): Promise<number> {
    return this.#write(() => {
      const row = this.#t.currentAttempt(ref);
      // A renewal never reaches past the deadline: a hung consumer times out even if it renews.
      const asked = this.#t.now + (leaseMs ?? this.#timings.leaseMs);
      const expires = Math.min(asked, row.deadline_at ?? asked);
      this.#tables.updateCommand(row, { lease_expires_at: expires, updated_at: this.#t.now });
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
      for (const row of this.#tables.running(this.#t.now)) {
        if (this.#t.expireLease(row) === 'redeliver') report.redelivered++;
        else report.timedOut++;
      }
      for (const pkg of this.#tables.expiredPackages(this.#t.now)) {
        this.#tables.deletePackage(pkg.id);
        this.#t.packageEvent(pkg, 'expired');
        report.expired++;
      }
      const retainedSince = this.#t.now - this.#timings.retainFinishedMs;
      for (const pkg of this.#tables.finishedBefore(retainedSince)) {
        this.#tables.deletePackage(pkg.id);
        report.removed++;
      }
      return report;
    });
  }

  recover(): Promise<number> {
    return this.#write(() => {
      const rows = this.#tables.running();
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
    this.#read();
    const pkg = this.#t.package(packageId);
    const commands = [...this.#tables.packageCommands(packageId).values()].map(commandStatusOf);
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
      this.#read()
        .listPackages(limit)
        .map((p) => ({
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

  async close(): Promise<void> {
    this.#commits.close();
    clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#db.open) {
      if (this.#sinceSnapshot > 0) this.#snapshot();
      await this.#walSync?.close();
      this.#listeners.clear();
      this.#db.close();
    }
  }

  /** Runs `op` in the next group commit at one instant of the clock; a throw undoes it alone. */
  #write<T>(op: () => T, early?: (value: T) => boolean): Promise<T> {
    return this.#commits.run(() => {
      const events = this.#t.events.length;
      const mark = this.#tables.mark();
      try {
        this.#t.now = this.#clock.now();
        return op();
      } catch (error) {
        this.#tables.rollback(mark);
        this.#t.events.length = events;
        throw error;
      }
    }, early);
  }

  /** Folds the journal into the snapshot once no commit came for `snapshotWhenIdleMs`. */
  #snapshotWhenIdle(): void {
    this.#lastCommit = Date.now();
    if (this.#idle !== undefined) return;
    const check = (): void => {
      const quiet = Date.now() - this.#lastCommit;
      if (quiet < snapshotWhenIdleMs) {
        this.#idle = setTimeout(check, snapshotWhenIdleMs - quiet).unref();
        return;
      }
      this.#idle = undefined;
      if (!this.#db.open || this.#sinceSnapshot === 0) return;
      if (this.#db.inTransaction) this.#snapshotWhenIdle();
      else this.#snapshot();
    };
    this.#idle = setTimeout(check, snapshotWhenIdleMs).unref();
  }

  /** Rolls back the open transaction and reads the tables back from the file. */
  #abandon(): void {
    if (this.#db.inTransaction) this.#db.prepare('ROLLBACK').run();
    this.#t.events = [];
    this.#load();
  }

  /** The tables, brought up to date with what other connections committed. */
  #read(): StoreTables {
    try {
      this.#db.transaction(() => {
        this.#catchUp();
      })();
    } catch (error) {
      // Another connection is recovering or checkpointing the file: answer from what is known.
      if (!isBusy(error)) throw error;
    }
    return this.#tables;
  }

  /** Applies the journal rows other connections committed since this one last looked. */
  #catchUp(): void {
    const version = this.#sql.dataVersion.get() ?? 0;
    if (version === this.#version) return;
    this.#version = version;
    const through = Number(this.#sql.getMeta.get('compacted_through') ?? 0);
    if (through > this.#applied) {
      // Another connection folded rows this one never saw into the snapshot: read it afresh.
      this.#load();
      return;
    }
    for (const row of this.#sql.journalSince.iterate(this.#applied)) this.#replay(row);
    this.#tables.takePatches();
  }

  /** Reads the snapshot and replays the journal after it: the state of the file. */
  #load(): void {
    const tables = new StoreTables();
    this.#db.transaction(() => {
      this.#version = this.#sql.dataVersion.get() ?? 0;
      this.#applied = Number(this.#sql.getMeta.get('compacted_through') ?? 0);
      for (const row of this.#sql.loadPackages.iterate()) tables.apply(['P', row]);
      for (const row of this.#sql.loadCommands.iterate()) tables.apply(['C', row]);
      for (const dep of this.#sql.loadDeps.iterate()) {
        tables.apply(['D', dep.package_id, dep.needs_id, dep.command_id]);
      }
      tables.takePatches();
      tables.clearDirty();
      this.#tables = tables;
      this.#sinceSnapshot = 0;
      for (const row of this.#sql.journalSince.iterate(this.#applied)) this.#replay(row);
      tables.takePatches();
    })();
    const events = this.#t.events;
    this.#t = new StoreTransitions(tables, this.#timings);
    this.#t.events = events;
  }

  #replay(row: { seq: number; patches: string }): void {
    this.#tables.batchSeq = row.seq;
    for (const patch of JSON.parse(row.patches) as TablePatch[]) this.#tables.apply(patch);
    this.#applied = row.seq;
    this.#sinceSnapshot++;
  }

  /**
   * Folds the journal into the snapshot: writes every row changed since the last one, removes
   * what was deleted, and drops the journal rows it covers, in one transaction. A snapshot that
   * fails (the file busy or full) changes nothing: the journal still holds every change, and the
   * next snapshot tries again.
   */
  #snapshot(): void {
    try {
      this.#db
        .transaction(() => {
          this.#catchUp();
          const tables = this.#tables;
          for (const row of tables.dirtyPackages) {
            if (tables.package(row.id) === row) this.#sql.upsertPackage.run(...packageValues(row));
          }
          for (const row of tables.dirtyCommands) {
            if (tables.holds(row)) this.#sql.upsertCommand.run(...commandValues(row));
          }
          for (const [packageId, needsId, commandId] of tables.newDeps) {
            this.#sql.insertDep.run(packageId, needsId, commandId);
          }
          for (const id of tables.deletedPackages) {
            this.#sql.deleteDeps.run(id);
            this.#sql.deleteCommands.run(id);
            this.#sql.deletePackage.run(id);
          }
          this.#sql.trimJournal.run(this.#applied);
          this.#sql.setMeta.run('compacted_through', String(this.#applied));
        })
        .immediate();
    } catch {
      return;
    }
    this.#tables.clearDirty();
    this.#sinceSnapshot = 0;
  }
}

/** Whether SQLite refused because another connection holds the lock. */
function isBusy(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
}
