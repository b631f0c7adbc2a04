import type {
  AckResult,
  AttemptRef,
  BrokerListener,
  CommandInput,
  Lease,
  NewPackageOptions,
  PackageState,
  PackageStatus,
  QueueKey,
  RecoveryReport,
} from './broker-types.js';
import type { AckReply, PackageSummary } from './queue-store.js';
import type { SpinError } from '../core/errors.js';

/**
 * The broker as its users see it, wherever it runs: in the daemon (reached over its socket) or
 * embedded in the CLI process. `spin apply` submits packages and follows events; the executor
 * opens a consumer per (node, resource) queue. Both implementations have the same semantics
 * because both end in a `QueueStore`.
 */
export interface Broker {
  /** Where the broker runs: `daemon` (over the socket) or `embedded` (in this process). */
  readonly kind: 'daemon' | 'embedded';
  /** What opening the store recovered, when this process opened it as its owner (embedded). */
  readonly recovery?: RecoveryReport | undefined;
  createPackage(options?: NewPackageOptions): Promise<string>;
  addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]>;
  enqueue(packageId: string): Promise<PackageState>;
  cancel(packageId: string): Promise<PackageState>;
  status(packageId: string): Promise<PackageStatus>;
  /** See `QueueStore.claimState`. */
  claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined>;
  listPackages(limit?: number): Promise<PackageSummary[]>;
  /**
   * Calls `listener` with every event from now on (of one package, when given); resolves once the
   * subscription is live, so nothing after that is missed. Call the returned function to stop.
   */
  subscribe(listener: BrokerListener, options?: SubscribeOptions): Promise<() => void>;
  /** Opens a consumer of one queue: what an agent runs on. */
  consumer(options: ConsumerOptions): Promise<QueueConsumer>;
  /** Releases the broker (the connection, or the embedded store and its lock). */
  close(): Promise<void>;
}

/** What a subscription follows, and whom to tell when it can no longer follow it. */
export interface SubscribeOptions {
  /** Only the events of this package. */
  packageId?: string;
  /**
   * Called once if the events stop for good before the subscription was ended: the daemon went
   * away, or stopped answering. Events may have been missed; nothing more will come.
   */
  onLost?: (error: SpinError) => void;
}

/** Which queue a consumer takes commands from, and how it holds them. */
export interface ConsumerOptions extends QueueKey {
  /** Lease length; the broker's default (30 s) otherwise. Renew before it runs out. */
  leaseMs?: number;
  /** A name for status and the audit log, e.g. `storage-agent@host`. */
  holder?: string;
  /** See `LeaseOptions.reclaim`: for transports that may lose a lease's answer (NATS). */
  reclaim?: boolean;
  /** See `LeaseOptions.succeeds`: the holder of the process this consumer replaces. */
  succeeds?: string;
}

/**
 * One consumer of one queue. The agent loop is: `lease`, run, `ack` with `next: true` (which
 * returns the next lease in the same round trip), and `lease` again when none came back.
 * Refused renewals and acks throw SpinError `stale_attempt` or `cancelled`: stop the work.
 */
export interface QueueConsumer {
  /** The next command, waiting up to `waitMs` (default 0) for one to become ready. */
  lease(options?: { waitMs?: number; signal?: AbortSignal }): Promise<Lease | undefined>;
  /** Extends the lease; returns its new expiry. */
  renew(ref: AttemptRef): Promise<number>;
  /** Settles the attempt; with `next`, also leases the next command of the queue at once. */
  ack(ref: AttemptRef, result: AckResult, options?: { next?: boolean }): Promise<AckReply>;
  /** Gives the lease back unfinished: ready again at once, no retry spent (on shutdown). */
  release(ref: AttemptRef): Promise<void>;
  /** Ends the consumer; leases it still holds are released. */
  close(): Promise<void>;
}
