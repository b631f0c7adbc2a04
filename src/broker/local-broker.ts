import { packageLabel } from './broker-semantics.js';
import type { Broker, ConsumerOptions, QueueConsumer, SubscribeOptions } from './broker.js';
import type {
  AckResult,
  AttemptRef,
  BrokerListener,
  CommandInput,
  Lease,
  NewPackageOptions,
  PackageState,
  PackageStatus,
  RecoveryReport,
} from './broker-types.js';
import type { AckReply, PackageSummary, QueueStore } from './queue-store.js';
import { QueueWaiter } from './queue-waiter.js';
import { NodeWatch, localOnly } from './node-watch.js';
import type { NodeAvailability } from './node-watch.js';

/** Options of a broker running on a store in this process. */
export interface LocalBrokerOptions {
  store: QueueStore;
  /** How often leases, deadlines and TTLs are applied; 0 turns the timer off (tests sweep). */
  sweepIntervalMs?: number;
  /** How often a waiting consumer looks again for a retry whose backoff ended. */
  pollMs?: number;
  /** Runs after the store is closed: releases the lock, closes the audit log. */
  onClose?: () => Promise<void>;
  /** What the store recovered when this broker opened it as its owner. */
  recovery?: RecoveryReport;
  /** Which nodes have agents; the sweep says why commands of the others wait (`NodeWatch`). */
  nodes?: (node: string, resource: string) => NodeAvailability;
}

/**
 * The broker in this process, on a queue store: what the daemon serves over its socket and what
 * the CLI runs embedded when no daemon answers. It adds to the store what only a running process
 * can do: a sweep timer, consumers that wait for work, and event fan-out.
 */
export class LocalBroker implements Broker {
  readonly kind = 'embedded' as const;
  readonly store: QueueStore;
  /** What opening the store recovered, when this broker owns it. */
  readonly recovery: RecoveryReport | undefined;
  readonly #waiter: QueueWaiter;
  readonly #timer: NodeJS.Timeout | undefined;
  #nodeWatch: NodeWatch;
  readonly #onClose: (() => Promise<void>) | undefined;
  readonly #unsubscribe: () => void;
  #closed = false;

  constructor(options: LocalBrokerOptions) {
    this.store = options.store;
    this.recovery = options.recovery;
    this.#waiter = new QueueWaiter(options.pollMs);
    this.#onClose = options.onClose;
    this.#unsubscribe = this.store.subscribe((event) => {
      this.#waiter.notify(event);
    });
    const every = options.sweepIntervalMs ?? 1_000;
    this.#nodeWatch = new NodeWatch(this.store, options.nodes ?? localOnly);
    this.#timer =
      every > 0
        ? setInterval(() => {
            this.store.sweep().catch(() => undefined);
            this.#nodeWatch.check().catch(() => undefined);
          }, every).unref()
        : undefined;
  }

  /** Who serves which node from now on (the daemon's fleet, as heartbeats report it). */
  watchNodes(availability: (node: string, resource: string) => NodeAvailability): void {
    this.#nodeWatch = new NodeWatch(this.store, availability);
  }

  async createPackage(options?: NewPackageOptions): Promise<string> {
    const name = options?.name;
    return this.store.createPackage(
      name === undefined ? options : { ...options, name: packageLabel(name) },
    );
  }
  addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]> {
    return this.store.addCommands(packageId, commands);
  }
  enqueue(packageId: string): Promise<PackageState> {
    return this.store.enqueue(packageId);
  }
  cancel(packageId: string): Promise<PackageState> {
    return this.store.cancel(packageId);
  }
  status(packageId: string): Promise<PackageStatus> {
    return this.store.status(packageId);
  }
  claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined> {
    return this.store.claimState(path, lineage, adopt);
  }
  listPackages(limit?: number): Promise<PackageSummary[]> {
    return this.store.listPackages(limit);
  }

  /** Events of a broker in this process never stop while it is open: `onLost` is not called. */
  subscribe(listener: BrokerListener, options: SubscribeOptions = {}): Promise<() => void> {
    const { packageId } = options;
    return Promise.resolve(
      this.store.subscribe(
        packageId === undefined
          ? listener
          : (event) => {
              if (event.packageId === packageId) listener(event);
            },
      ),
    );
  }

  consumer(options: ConsumerOptions): Promise<QueueConsumer> {
    return Promise.resolve(new LocalConsumer(this.store, this.#waiter, options));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#waiter.wakeAll();
    this.#unsubscribe();
    try {
      await this.store.close();
    } finally {
      // The lock and the pid file go whatever happened to the store (a full disk, say).
      await this.#onClose?.();
    }
  }
}

/** A consumer in the broker's own process: direct calls, woken by store events. */
class LocalConsumer implements QueueConsumer {
  readonly #store: QueueStore;
  readonly #waiter: QueueWaiter;
  readonly #options: ConsumerOptions;

  constructor(store: QueueStore, waiter: QueueWaiter, options: ConsumerOptions) {
    this.#store = store;
    this.#waiter = waiter;
    this.#options = options;
  }

  async lease(options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<Lease | undefined> {
    const until = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      const generation = this.#waiter.generation(this.#options);
      const lease = await this.#store.lease(this.#options);
      if (lease !== undefined) return lease;
      const left = until - Date.now();
      if (left <= 0 || options.signal?.aborted === true) return undefined;
      await this.#waiter.wait(this.#options, generation, left, options.signal);
    }
  }

  renew(ref: AttemptRef): Promise<number> {
    return this.#store.renew(ref, this.#options.leaseMs);
  }

  ack(ref: AttemptRef, result: AckResult, options: { next?: boolean } = {}): Promise<AckReply> {
    return this.#store.ack(ref, result, options.next === true ? this.#options : undefined);
  }

  release(ref: AttemptRef): Promise<void> {
    return this.#store.release(ref);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
