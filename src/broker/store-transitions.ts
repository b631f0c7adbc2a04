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
import type { CommandRow, PackageRow } from './sqlite-schema.js';
import type { StoreTables } from './store-tables.js';

/**
 * The state changes of the queue store, run on its tables inside a batch: leasing, settling an
 * attempt, releasing dependents, the transitive skip, lease expiry, and the package counters.
 * Each change is written and recorded as an event; the store emits the events once the batch is
 * durable. The rules themselves come from `broker-semantics.ts`.
 */
export class StoreTransitions {
  readonly tables: StoreTables;
  readonly timings: BrokerTimings;
  /** The instant of the operation being run: one clock reading per operation. */
  now = 0;
  /** Events of the batch in progress, emitted once it is durable. */
  events: BrokerEvent[] = [];

  constructor(tables: StoreTables, timings: BrokerTimings) {
    this.tables = tables;
    this.timings = timings;
  }

  /**
   * Leases the head of a queue. `slotFree` says the caller just settled this queue's running
   * command, so no other can be running (one in flight per queue) and the lookup is skipped.
   */
  lease(options: LeaseOptions, slotFree = false): Lease | undefined {
    const running = slotFree
      ? undefined
      : this.tables.runningInQueue(options.node, options.resource);
    if (running !== undefined) {
      if ((running.lease_expires_at ?? 0) > this.now) return undefined;
      this.expireLease(running);
      if (this.tables.runningInQueue(options.node, options.resource)) return undefined;
    }
    const head = this.tables.headOfQueue(options.node, options.resource);
    if (head === undefined || head.available_at > this.now) return undefined;
    const pkg = this.package(head.package_id);
    const leased = this.setCommand(head, {
      state: 'running',
      attempt: head.attempt + 1,
      attempt_id: randomUUID(),
      holder: options.holder ?? null,
      lease_expires_at: this.now + (options.leaseMs ?? this.timings.leaseMs),
      deadline_at: this.now + head.timeout_ms + this.timings.timeoutGraceMs,
      reason: null,
    });
    if (pkg.started === 0) this.savePackage(pkg, { started: 1 });
    return leaseOf(leased);
  }

  /** Records a successful attempt and makes ready every dependent whose needs all succeeded. */
  succeed(row: CommandRow, output: unknown): CommandRow {
    const done = this.setCommand(row, {
      state: 'succeeded',
      output: output === undefined ? null : JSON.stringify(output),
      error: null,
      reason: null,
    });
    const dependents = row.dependents === 0 ? [] : this.tables.dependents(row.package_id, row.id);
    for (const command_id of dependents) {
      const dependent = this.command(row.package_id, command_id);
      const pending = dependent.pending_needs - 1;
      if (dependent.state === 'waiting' && pending === 0) {
        this.setCommand(dependent, { state: 'ready', pending_needs: 0 });
      } else {
        this.tables.updateCommand(dependent, { pending_needs: pending });
      }
    }
    this.finishOne(row.package_id, false);
    return done;
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
    const failed = this.setCommand(row, {
      state: 'failed',
      failures,
      reason: decision.reason,
      error: errorText,
    });
    let skipped = 0;
    const frontier = [row.id];
    for (let id = frontier.pop(); id !== undefined; id = frontier.pop()) {
      for (const command_id of this.tables.dependents(row.package_id, id)) {
        const dependent = this.command(row.package_id, command_id);
        if (terminalCommandStates.has(dependent.state)) continue;
        this.setCommand(dependent, { state: 'skipped', reason: skipReason(row.id) });
        skipped++;
        frontier.push(command_id);
      }
    }
    this.finishOne(row.package_id, true, skipped);
    return failed;
  }

  /** Counts finished commands on the package and settles it when none is left. */
  finishOne(packageId: string, failed: boolean, skipped = 0): void {
    const pkg = this.package(packageId);
    this.savePackage(pkg, {
      unfinished: pkg.unfinished - 1 - skipped,
      failed: pkg.failed + (failed ? 1 + skipped : 0),
    });
  }

  expireLease(row: CommandRow): 'redeliver' | 'timeout' {
    const kind = expiryKind(this.now, row.deadline_at ?? 0);
    if (kind === 'timeout') this.fail(row, timeoutError(specOf(row)), true);
    else this.setCommand(row, { state: 'ready', reason: 'the lease ran out; delivered again' });
    return kind;
  }

  /** The row of a live attempt, or the refusal that fences off a stale one. */
  currentAttempt(ref: AttemptRef): CommandRow {
    const row = this.command(ref.packageId, ref.commandId);
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
   * Writes a command's new state (leases cleared unless given) and reports the transition;
   * returns the row, now in that state. `change` is completed in place: pass a fresh object.
   */
  setCommand(row: CommandRow, change: Partial<CommandRow> & { state: CommandState }): CommandRow {
    const from = row.state;
    if (from === 'running' && change.state !== 'running') {
      if (!('attempt_id' in change)) change.attempt_id = null;
      if (!('holder' in change)) change.holder = null;
      if (!('lease_expires_at' in change)) change.lease_expires_at = null;
      if (!('deadline_at' in change)) change.deadline_at = null;
    }
    if (terminalCommandStates.has(change.state)) change.active = null;
    change.updated_at = this.now;
    this.tables.updateCommand(row, change);
    this.commandEvent(row, from);
    return row;
  }

  /** Records the transition of a command to the state `row` holds. */
  commandEvent(row: CommandRow, from: CommandState): void {
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
  }

  /**
   * Writes columns of a package and, once it is enqueued, the state its counters call for
   * (`finished_at` stamped when it finishes); records a change of state.
   */
  savePackage(pkg: PackageRow, change: Partial<PackageRow>): PackageState {
    const from = pkg.state;
    this.tables.updatePackage(pkg, change);
    if (pkg.state !== 'staged') {
      const state = this.derivedState(pkg);
      if (terminalPackageStates.has(state) && !terminalPackageStates.has(from)) {
        this.tables.updatePackage(pkg, { state, finished_at: this.now });
      } else {
        this.tables.updatePackage(pkg, { state });
      }
    }
    if (pkg.state !== from) this.packageEvent(pkg, pkg.state, from);
    return pkg.state;
  }

  /** Records the transition of a package. */
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

  /** The state a package's counters call for (`packageStateOf`). */
  derivedState(pkg: PackageRow): PackageState {
    return packageStateOf({
      started: pkg.started === 1,
      unfinished: pkg.unfinished,
      failedOrSkipped: pkg.failed,
      cancelled: pkg.state === 'cancelled',
    });
  }

  /** A package row, or `not_found`. */
  package(id: string): PackageRow {
    const pkg = this.tables.package(id);
    if (pkg === undefined) {
      throw new SpinError('not_found', `no package ${id}`, { details: { packageId: id } });
    }
    return pkg;
  }

  /** A command row, or `not_found`. */
  command(packageId: string, id: string): CommandRow {
    const row = this.tables.command(packageId, id);
    if (row === undefined) {
      throw new SpinError('not_found', `no command ${id} in package ${packageId}`, {
        details: { packageId, commandId: id },
      });
    }
    return row;
  }
}
