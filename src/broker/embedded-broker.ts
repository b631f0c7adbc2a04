import { mkdirSync } from 'node:fs';
import { AuditLog, defaultAuditRotation } from './audit-log.js';
import type { AuditRotation } from './audit-log.js';
import { acquireBrokerLock } from './broker-lock.js';
import type { BrokerRole } from './broker-lock.js';
import { brokerPaths } from './broker-paths.js';
import type { BrokerTimings } from './broker-semantics.js';
import type { Clock } from '../core/clock.js';
import { LocalBroker } from './local-broker.js';
import { SqliteQueueStore } from './sqlite-queue-store.js';
import { currentProcess } from '../core/process-identity.js';

/** Options of a broker that owns a `SPIN_HOME`'s store. */
export interface OwnedBrokerOptions {
  home: string;
  clock?: Clock;
  timings?: Partial<BrokerTimings>;
  sweepIntervalMs?: number;
  /** `full` (default): acks are fsynced. `normal` is for scratch runs and tests only. */
  synchronous?: 'full' | 'normal';
  /** When the audit log is rotated (`defaultAuditRotation`). */
  auditRotation?: AuditRotation;
  /** The spin command of this process, recorded on the packages it owns (`spin apply`). */
  command?: string;
}

/**
 * Opens the broker of `home` in this process as its one owner: takes the broker lock (a second
 * owner fails with `daemon_running`, exit 3), opens the store, recovers what a previous owner
 * left (`QueueStore.recover`: the packages of owners that are gone are cancelled, the leases of
 * unowned ones delivered again), and appends every transition to the audit log. The
 * daemon runs on this; `openBroker` uses it embedded when no daemon answers.
 */
export async function openOwnedBroker(
  options: OwnedBrokerOptions,
  role: BrokerRole = 'embedded',
): Promise<LocalBroker> {
  const paths = brokerPaths(options.home);
  const lock = acquireBrokerLock(paths, role);
  try {
    const store = new SqliteQueueStore({
      path: paths.database,
      owner: { ...currentProcess(), command: options.command ?? 'spin' },
      ...(options.clock ? { clock: options.clock } : {}),
      ...(options.timings ? { timings: options.timings } : {}),
      ...(options.synchronous ? { synchronous: options.synchronous } : {}),
    });
    const audit = new AuditLog(paths.auditLog, options.auditRotation ?? defaultAuditRotation);
    store.subscribe((event) => {
      audit.record(event);
    });
    const recovery = await store.recover();
    await store.sweep();
    return new LocalBroker({
      store,
      recovery,
      ...(options.sweepIntervalMs === undefined
        ? {}
        : { sweepIntervalMs: options.sweepIntervalMs }),
      onClose: async () => {
        try {
          await audit.close();
        } finally {
          lock.release();
        }
      },
    });
  } catch (error) {
    lock.release();
    throw error;
  }
}

/**
 * Opens the store of `home` without owning it, for the message commands while no daemon runs:
 * packages can be created, filled, enqueued and read. It neither sweeps nor recovers leases
 * (consumers belong on an owned broker), nor rotates the audit log it appends to.
 */
export function openStoreClient(home: string): LocalBroker {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  const paths = brokerPaths(home);
  const store = new SqliteQueueStore({ path: paths.database });
  const audit = new AuditLog(paths.auditLog);
  store.subscribe((event) => {
    audit.record(event);
  });
  return new LocalBroker({ store, sweepIntervalMs: 0, onClose: () => audit.close() });
}
