import { randomUUID } from 'node:crypto';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import {
  decideAfterFailure,
  expiryKind,
  packageStateOf,
  skipReason,
  timeoutError,
} from './broker-semantics.js';
import type { BrokerTimings } from './broker-semantics.js';
import type {
  AttemptRef,
  BrokerEvent,
  CommandState,
  Lease,
  LeaseOptions,
  PackageState,
} from './broker-types.js';
import { terminalCommandStates, terminalPackageStates } from './broker-types.js';
import { leaseOf, specOf } from './sqlite-rows.js';
import { mutableCommandColumns, mutablePackageColumns } from './sqlite-schema.js';
import type { CommandRow, PackageRow, Statements } from './sqlite-schema.js';

/**
 * The state changes of the queue store, run inside its transactions: leasing, settling an
 * attempt, releasing dependents, the transitive skip, lease expiry, and the package counters.
 * Each change writes its rows and records its events, which the store emits once the transaction
 * is committed. The rules themselves come from `broker-semantics.ts`.
 */
export class SqliteTransitions {
  readonly sql: Statements;
  readonly timings: BrokerTimings;
  /** The instant of the operation being run: one clock reading per operation. */
  now = 0;
  /** Events of the transaction in progress. */
  events: BrokerEvent[] = [];

  constructor(sql: Statements, timings: BrokerTimings) {
    this.sql = sql;
    this.timings = timings;
  }

  /** Leases the head of a queue, unless another command of the queue runs. */
  lease(options: LeaseOptions): Lease | undefined {
    const running = this.sql.runningInQueue.get(options.node, options.resource);
    if (running !== undefined) {
      if (options.succeeds !== undefined && running.holder === options.succeeds) {
        // Its holder was the process this one replaces, gone for sure: its lease ends now
        // rather than when it runs out.
        this.setCommand(running, {
          state: 'ready',
          reason: 'its agent was restarted; delivered again',
        });
      } else if ((running.lease_expires_at ?? 0) > this.now) {
        if (options.reclaim !== true || options.holder === undefined) return undefined;
        if (running.holder !== options.holder) return undefined;
        // The same holder asks again: the answer that carried this lease was lost on the way.
        this.update(running, {
          lease_expires_at: Math.min(
            this.now + (options.leaseMs ?? this.timings.leaseMs),
            running.deadline_at ?? Infinity,
          ),
          updated_at: this.now,
        });
        return leaseOf(running, this.package(running.package_id).name);
      } else {
        this.expireLease(running);
        if (this.sql.runningInQueue.get(options.node, options.resource)) return undefined;
      }
    }
    const head = this.sql.headOfQueue.get(options.node, options.resource);
    if (head === undefined || head.available_at > this.now) return undefined;
    const pkg = this.package(head.package_id);
    this.setCommand(head, {
      state: 'running',
      attempt: head.attempt + 1,
      attempt_id: randomUUID(),
      holder: options.holder ?? null,
      lease_expires_at: this.now + (options.leaseMs ?? this.timings.leaseMs),
      deadline_at: this.now + head.timeout_ms + this.timings.timeoutGraceMs,
      reason: null,
    });
    if (pkg.started === 0) this.savePackage(pkg, { started: 1 });
    return leaseOf(head, pkg.name);
  }

  /** Records a successful attempt and makes ready every dependent whose needs all succeeded. */
  succeed(row: CommandRow, output: unknown): CommandRow {
    this.setCommand(row, {
      state: 'succeeded',
      output: output === undefined ? null : JSON.stringify(output),
      error: null,
      reason: null,
    });
    for (const id of this.sql.dependents.all(row.package_id, row.id)) {
      const dependent = this.command(row.package_id, id);
      const pending = dependent.pending_needs - 1;
      if (dependent.state === 'waiting' && pending === 0) {
        this.setCommand(dependent, { state: 'ready', pending_needs: 0 });
      } else {
        this.update(dependent, { pending_needs: pending });
      }
    }
    this.finishOne(row.package_id, false);
    return row;
  }

  /** Records a failed attempt: a retry after backoff, or failure and the transitive skip. */
  fail(row: CommandRow, error: WireError, retryable: boolean): CommandRow {
    const failures = row.failures + 1;
    const decision = decideAfterFailure({
      failures,
      retries: row.retries,
      retryable,
      error,
      now: this.now,
      backoff: this.timings.backoff,
    });
    const errorText = JSON.stringify(error);
    if (decision.state === 'ready') {
      return this.setCommand(row, {
        state: 'ready',
        failures,
        available_at: decision.availableAt,
        reason: decision.reason,
        error: errorText,
      });
    }
    this.setCommand(row, { state: 'failed', failures, reason: decision.reason, error: errorText });
    let skipped = 0;
    const frontier = [row.id];
    for (let id = frontier.pop(); id !== undefined; id = frontier.pop()) {
      for (const dependentId of this.sql.dependents.all(row.package_id, id)) {
        const dependent = this.command(row.package_id, dependentId);
        if (terminalCommandStates.has(dependent.state)) continue;
        this.setCommand(dependent, { state: 'skipped', reason: skipReason(row.id) });
        skipped++;
        frontier.push(dependentId);
      }
    }
    this.finishOne(row.package_id, true, skipped);
    return row;
  }

  /** Counts finished commands on the package, which settles once none is left. */
  finishOne(packageId: string, failed: boolean, skipped = 0): void {
    const pkg = this.package(packageId);
    this.savePackage(pkg, {
      unfinished: pkg.unfinished - 1 - skipped,
      failed: pkg.failed + (failed ? 1 + skipped : 0),
    });
  }

  /** Before its deadline, a lease that ran out is delivered again; past it, it timed out. */
  expireLease(row: CommandRow): 'redeliver' | 'timeout' {
    const kind = expiryKind(this.now, row.deadline_at ?? 0);
    if (kind === 'timeout') this.fail(row, timeoutError(specOf(row)), true);
    else this.setCommand(row, { state: 'ready', reason: 'the lease ran out; delivered again' });
    return kind;
  }

  /** The row of a live attempt, or the refusal that fences off a stale one. */
  currentAttempt(ref: AttemptRef): CommandRow {
    const row = this.command(ref.packageId, ref.commandId);
    if (ref.node !== undefined && ref.node !== row.node) {
      throw new SpinError(
        'wrong_node',
        `command ${ref.commandId} belongs to node ${row.node}, not to node ${ref.node}`,
        { details: { packageId: ref.packageId, commandId: ref.commandId, node: ref.node } },
      );
    }
    if (row.state === 'cancelled') {
      throw new SpinError('cancelled', `command ${ref.commandId} was cancelled`, {
        details: { ...ref },
      });
    }
    if (
      row.state !== 'running' ||
      row.attempt_id !== ref.attemptId ||
      (row.lease_expires_at ?? 0) <= this.now
    ) {
      throw new SpinError(
        'stale_attempt',
        `attempt ${ref.attemptId} of command ${ref.commandId} no longer holds its lease`,
        { details: { ...ref, state: row.state } },
      );
    }
    return row;
  }

  /**
   * Moves a command to a new state (its lease cleared on leaving `running`, unless given) and
   * records the transition; returns the row, changed in place.
   */
  setCommand(row: CommandRow, change: Partial<CommandRow> & { state: CommandState }): CommandRow {
    const from = row.state;
    if (from === 'running' && change.state !== 'running') {
      change.attempt_id ??= null;
      change.holder ??= null;
      change.lease_expires_at ??= null;
      change.deadline_at ??= null;
    }
    change.updated_at = this.now;
    this.update(row, change);
    const event: BrokerEvent = {
      type: 'command',
      at: this.now,
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
    this.events.push(event);
    return row;
  }

  /** Writes the changed columns of a command row (the row object changes with them). */
  update(row: CommandRow, change: Partial<CommandRow>): void {
    Object.assign(row, change);
    this.sql.updateCommand.run(...mutableCommandColumns.map((c) => row[c]), row.package_id, row.id);
  }

  /**
   * Writes columns of a package and, once it is enqueued, the state its counters call for
   * (`finished_at` stamped when it finishes); records a change of state.
   */
  savePackage(pkg: PackageRow, change: Partial<PackageRow>): PackageState {
    const from = pkg.state;
    Object.assign(pkg, change);
    if (pkg.state !== 'staged') {
      pkg.state = packageStateOf({
        started: pkg.started === 1,
        unfinished: pkg.unfinished,
        failedOrSkipped: pkg.failed,
        cancelled: pkg.state === 'cancelled',
      });
      if (terminalPackageStates.has(pkg.state) && !terminalPackageStates.has(from)) {
        pkg.finished_at = this.now;
      }
    }
    this.sql.updatePackage.run(...mutablePackageColumns.map((c) => pkg[c]), pkg.id);
    if (pkg.state !== from) this.packageEvent(pkg, pkg.state, from);
    return pkg.state;
  }

  packageEvent(pkg: PackageRow, to: PackageState, from: PackageState = pkg.state): void {
    this.events.push({
      type: 'package',
      at: this.now,
      packageId: pkg.id,
      name: pkg.name,
      from,
      to,
    });
  }

  deletePackage(id: string): void {
    this.sql.deleteDeps.run(id);
    this.sql.deleteCommands.run(id);
    this.sql.deletePackage.run(id);
    this.sql.deletePackageMeta.run(id);
  }

  /** A package row, or `not_found`. */
  package(id: string): PackageRow {
    const pkg = this.sql.package.get(id);
    if (pkg === undefined) {
      throw new SpinError('not_found', `no package ${id}`, { details: { packageId: id } });
    }
    return pkg;
  }

  /** A command row, or `not_found`. */
  command(packageId: string, id: string): CommandRow {
    const row = this.sql.command.get(packageId, id);
    if (row === undefined) {
      throw new SpinError('not_found', `no command ${id} in package ${packageId}`, {
        details: { packageId, commandId: id },
      });
    }
    return row;
  }
}
