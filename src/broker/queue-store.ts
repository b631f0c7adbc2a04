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
  PackageResults,
  PackageStatus,
  RecoveryReport,
} from './broker-types.js';
import type { WireError } from '../core/errors.js';

/**
 * The contract of the broker's queue store (today's one is SQLite: sqlite-queue-store.ts). A store
 * passes `test/broker/queue-store-conformance.ts`; the rules themselves live in
 * `broker-semantics.ts`, and the store only applies them.
 *
 * Rules a store guarantees:
 * - `enqueue` moves all of a package's commands into their queues in one atomic step, in add
 *   order; a second `enqueue` changes nothing. A package never enqueued expires after its TTL.
 * - A queue is (node, resource). `lease` hands out the first `ready` command of the queue in
 *   enqueue order, and nothing while another command of that queue is `running`; `waiting`
 *   commands are passed over and keep their place.
 * - Every lease has a fresh attempt id. `renew` and `ack` naming any other attempt, or a lease
 *   that ran out, are refused with `stale_attempt` (a cancelled command: `cancelled`).
 * - A failed attempt is retried with exponential backoff while retries are left and the error is
 *   retryable; otherwise the command fails and every command needing it, transitively, is
 *   `skipped` with a reason naming it.
 * - Every state change is reported to subscribers after it is durable, in commit order.
 * - An operation whose promise resolved is durable: it survives a crash of the machine. A lease
 *   may resolve before (a lost lease is delivered again), unless the command became ready in a
 *   change not yet durable.
 *
 * Failures are SpinErrors: `not_found` (unknown package or command), `invalid_input` (duplicate
 * ids, unknown needs, cycles), `state_conflict` (adding to an enqueued package), `stale_attempt`,
 * `cancelled`.
 */
export interface QueueStore {
  /** Creates an empty `staged` package and returns its id. */
  createPackage(options?: NewPackageOptions): Promise<string>;
  /** Adds commands to a staged package; returns their ids (generated where none was given). */
  addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]>;
  /** Distributes a package's commands to their queues, atomically; idempotent. */
  enqueue(packageId: string): Promise<PackageState>;
  /** Cancels every unfinished command of the package; a running one's attempt is fenced off. */
  cancel(packageId: string): Promise<PackageState>;
  /**
   * Leases the next command of a queue, or returns undefined when none may run now. May resolve
   * before the lease is durable; never before the change that made the command ready is.
   */
  lease(options: LeaseOptions): Promise<Lease | undefined>;
  /** Extends a lease by `leaseMs` (the store's default otherwise); returns the new expiry. */
  renew(ref: AttemptRef, leaseMs?: number): Promise<number>;
  /**
   * Settles an attempt. With `next`, also leases the next command of that queue in the same
   * atomic step, so a consumer needs one round trip per command.
   */
  ack(ref: AttemptRef, result: AckResult, next?: LeaseOptions): Promise<AckReply>;
  /**
   * Gives a lease back unfinished (a consumer shutting down or losing its connection): the command
   * is ready again at once, in its place, and no retry is spent.
   */
  release(ref: AttemptRef): Promise<void>;
  /** `ready` commands of every node but `node` (at most 10,000, in queue order). */
  readyElsewhere(node: string): Promise<ReadyCommand[]>;
  /**
   * Says why a `ready` command is not delivered (its node has no agent): its reason changes, with
   * an event, when it differs. Nothing for a command in any other state.
   */
  holdReason(packageId: string, commandId: string, reason: string): Promise<void>;
  /**
   * Fails a command that is still `ready` (never delivered since it became ready) with `error`,
   * without a retry: what needs it is skipped. Returns false, changing nothing, for a command in
   * any other state (it was leased meanwhile).
   */
  abandon(packageId: string, commandId: string, error: WireError): Promise<boolean>;
  /** Applies time: expired leases, timed-out attempts and expired packages. */
  sweep(): Promise<SweepReport>;
  /**
   * Called by a broker that starts on a store another broker used, whose leases died with it.
   * Owned packages whose owner is gone are cancelled, running commands and all: nothing they
   * left runs later. Running commands of unowned packages are made ready again, in their place.
   */
  recover(): Promise<RecoveryReport>;
  /**
   * A package's `meta` and the commands of it that ended, with their specs and outputs: what a
   * process other than its submitter needs to record them (the daemon, for a CLI that died).
   */
  results(packageId: string): Promise<PackageResults>;
  /**
   * Tells the broker which state file (by absolute path) it serves and that file's lineage.
   * Returns the lineage it knew for that path when it differs and `adopt` is false (a state
   * from elsewhere took the file's place: the caller refuses it); otherwise records the lineage.
   */
  claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined>;
  /** Every command's state and every failure of a package. */
  status(packageId: string): Promise<PackageStatus>;
  /** The packages the store holds, newest first, without their commands. */
  listPackages(limit?: number): Promise<PackageSummary[]>;
  /** Calls `listener` with every event after it is durable; returns the unsubscribe function. */
  subscribe(listener: BrokerListener): () => void;
  /** Durable commits made so far and the operations they carried (optional: for metrics). */
  stats?(): { commits: number; operations: number };
  /** Finishes pending work and releases the store. */
  close(): Promise<void>;
}

/** The answer to an ack: what became of the command, and the next lease when one was asked for. */
export interface AckReply {
  outcome: AckOutcome;
  next?: Lease;
}

/** What a sweep changed. */
export interface SweepReport {
  /** Leases that ran out and were made ready again. */
  redelivered: number;
  /** Attempts that passed their deadline and counted as failed (`timeout`). */
  timedOut: number;
  /** Packages removed because they were never enqueued within their TTL. */
  expired: number;
  /** Finished packages removed once their retention (7 days by default) ran out. */
  removed: number;
}

/** A command ready to be delivered, and why it is not yet (when the broker said). */
export interface ReadyCommand {
  packageId: string;
  commandId: string;
  node: string;
  resource: string;
  reason?: string;
}

/** A package without its commands. */
export interface PackageSummary {
  id: string;
  name: string;
  state: PackageState;
  createdAt: number;
  commands: number;
  unfinished: number;
}
