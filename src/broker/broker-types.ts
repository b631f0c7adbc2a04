import type { WireError } from '../core/errors.js';
import type { CommandSpec } from '../core/package.js';
import type { ProcessIdentity } from '../core/process-identity.js';

/**
 * The life of a command in the broker.
 *
 * ```
 *   staged ──enqueue──▶ waiting ──needs succeeded──▶ ready ──lease──▶ running ──ack ok──▶ succeeded
 *      │                   │                           ▲                 │
 *      │                   │ a need failed             └─retry/expiry────┤ ack failed, no retry left
 *      │                   ▼                                             ▼
 *      └──cancel──▶ cancelled        skipped ◀──(transitively)───────  failed
 * ```
 *
 * `waiting` commands are passed over by their queue and keep their place; a `ready` command whose
 * `availableAt` lies in the future (retry backoff) holds the head of its queue.
 */
export type CommandState =
  'staged' | 'waiting' | 'ready' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/**
 * The life of a package.
 *
 * ```
 *   staged ──enqueue──▶ enqueued ──first lease──▶ running ──all done──▶ succeeded | failed
 *      │                    └──────────┴──cancel──▶ cancelled
 *      └──TTL──▶ expired (and removed)
 * ```
 */
export type PackageState =
  'staged' | 'enqueued' | 'running' | 'succeeded' | 'failed' | 'cancelled' | 'expired';

/** A command as it is added: the id may be left to the broker (`c1`, `c2`, … in add order). */
export type CommandInput = Omit<CommandSpec, 'id'> & { id?: string };

/** Identifies a queue: serial inside, parallel across. */
export interface QueueKey {
  node: string;
  resource: string;
}

/** Identifies one delivery of one command; an ack or renew naming another attempt is stale. */
export interface AttemptRef {
  packageId: string;
  commandId: string;
  attemptId: string;
  /**
   * The node the request came from, when the transport knows it (NATS: the node of the subject it
   * arrived on). The store refuses it (`wrong_node`) for a command pinned to another node.
   */
  node?: string;
}

/** A command handed to one consumer until `leaseExpiresAt`, unless renewed. */
export interface Lease extends AttemptRef {
  /** The package's name (`vm-demo`): where the attempt's output is kept. */
  packageName?: string;
  spec: CommandSpec;
  /** 1 for the first delivery, counting redeliveries after lease expiry and retries. */
  attempt: number;
  leaseExpiresAt: number;
  /** Past this instant the broker counts the attempt as timed out, renewed or not. */
  deadlineAt: number;
}

/** What a consumer reports when it is done with a lease. */
export interface AckResult {
  ok: boolean;
  output?: unknown;
  error?: WireError;
  /** Whether running it again may succeed; false (bad params) fails the command at once. */
  retryable?: boolean;
}

/** The state a command moved to on an accepted ack. */
export interface AckOutcome {
  state: CommandState;
  /** When a retry becomes available (state `ready`). */
  availableAt?: number;
}

/** Options of a lease request. */
export interface LeaseOptions extends QueueKey {
  /** How long the lease lasts before it must be renewed; the store's default otherwise. */
  leaseMs?: number;
  /** Who holds it, for status and the audit log. */
  holder?: string;
  /**
   * When the queue's running command is held by this same `holder` (unique per process), hand
   * that lease back rather than nothing: a holder asks for a lease only when it holds none of
   * the queue, so its earlier answer was lost (a request over NATS whose reply did not arrive).
   */
  reclaim?: boolean;
  /**
   * The holder of an earlier process of this consumer, known to be gone (killed, its machine
   * restarted): a command of the queue it still holds is given back and delivered again now,
   * rather than when its lease runs out. The new attempt ends what is left of the old one's
   * programs before it runs.
   */
  succeeds?: string;
}

/** One command's state as status reports it. */
export interface CommandStatus {
  id: string;
  resource: string;
  action: string;
  node: string;
  needs: string[];
  state: CommandState;
  /** Deliveries so far. */
  attempt: number;
  /** Why the command is in its state, for people: a skip names the failed command. */
  reason?: string;
  error?: WireError;
  output?: unknown;
  updatedAt: number;
}

/** A package with every command's state and every failure, not only the first. */
export interface PackageStatus {
  id: string;
  name: string;
  state: PackageState;
  createdAt: number;
  enqueuedAt?: number;
  finishedAt?: number;
  commands: CommandStatus[];
  failures: { commandId: string; error: WireError }[];
}

/** Options of a new package. */
export interface NewPackageOptions {
  /** A label for people; the id is the broker's. */
  name?: string;
  /** How long a never-enqueued package lives. */
  ttlMs?: number;
  /**
   * Whether the package belongs to the process of the broker that creates it (what apply,
   * destroy and watch submit). While that process lives the package goes on; once it is gone,
   * the next owner of the store cancels what it left unfinished, so no stale intent acts later.
   * Only one owned package of a name may be enqueued and unfinished at a time. Packages built by hand
   * (`spin message`) are not owned: they stay queued until they run.
   */
  owned?: boolean;
  /**
   * What the submitter needs to make sense of the package's results if it dies before it has
   * read them (the state file, the phase, the file's needs): kept with the package as JSON and
   * handed back by `recover`. At most 1 MiB.
   */
  meta?: Record<string, unknown>;
}

/** The process an owned package belongs to, and what it was running. */
export interface PackageOwner extends ProcessIdentity {
  /** The spin command of that process, e.g. `spin apply`. */
  command: string;
}

/** A command that ended (succeeded, failed or skipped), with what it was and what it gave. */
export interface FinishedCommand {
  spec: CommandSpec;
  /** cancelled: it was running when its submitter died (a recovery's `interrupted`). */
  state: 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  attempt: number;
  finishedAt: number;
  output?: unknown;
  error?: WireError;
  reason?: string;
}

/** A package's results as its submitter needs them to record them: see `QueueStore.results`. */
export interface PackageResults {
  packageId: string;
  name: string;
  state: PackageState;
  meta?: Record<string, unknown>;
  finished: FinishedCommand[];
}

/** What a store did when it opened on what an earlier owner left behind. */
export interface RecoveryReport {
  /** Commands of unowned packages that were running, made ready again (delivered again). */
  redelivered: number;
  /** Owned packages whose owner is gone, cancelled with what they left unfinished. */
  cancelled: {
    packageId: string;
    name: string;
    owner: PackageOwner;
    createdAt: number;
    /** Commands that had not started. */
    notStarted: number;
    /** Commands that were running when the owner died: their outcome is unknown. */
    interrupted: string[];
    /** The package's `meta`, as it was submitted. */
    meta?: Record<string, unknown>;
    /** The commands that ended before the owner died, which it may not have recorded. */
    finished: FinishedCommand[];
  }[];
}

/**
 * A state change, as the broker reports it to subscribers, the audit log and the CLI. Events are
 * emitted after the change is durable, in commit order.
 */
export type BrokerEvent = CommandEvent | PackageEvent | RefusalEvent;

/**
 * An ack, renew or release the broker refused: its attempt no longer held the lease (fenced off:
 * the command was delivered again, or timed out) or the command was cancelled. Nothing changed;
 * the event is for the audit log and for whoever watches, so that a late agent is seen.
 */
export interface RefusalEvent {
  type: 'refused';
  at: number;
  packageId: string;
  commandId: string;
  attemptId: string;
  code: 'stale_attempt' | 'cancelled';
  reason: string;
}

/** A command moved from one state to another (`from` is absent when it was added). */
export interface CommandEvent {
  type: 'command';
  at: number;
  packageId: string;
  commandId: string;
  node: string;
  resource: string;
  from?: CommandState;
  to: CommandState;
  attempt: number;
  attemptId?: string;
  reason?: string;
  error?: WireError;
  output?: unknown;
  /** The whole command, on the event that adds it, so the audit log can recreate the message. */
  spec?: CommandSpec;
}

/** A package moved from one state to another (`from` is absent when it was created). */
export interface PackageEvent {
  type: 'package';
  at: number;
  packageId: string;
  name: string;
  from?: PackageState;
  to: PackageState;
}

/** Receives broker events; must not throw. */
export type BrokerListener = (event: BrokerEvent) => void;

/** Command states after which nothing more happens to the command. */
export const terminalCommandStates: ReadonlySet<CommandState> = new Set([
  'succeeded',
  'failed',
  'skipped',
  'cancelled',
]);

/** Package states after which nothing more happens to the package. */
export const terminalPackageStates: ReadonlySet<PackageState> = new Set([
  'succeeded',
  'failed',
  'cancelled',
  'expired',
]);
