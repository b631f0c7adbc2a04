import { existsSync } from 'node:fs';
import { SpinError } from '../core/errors.js';
import { spinHome } from '../core/spin-home.js';
import type { Broker } from '../broker/broker.js';
import { brokerPaths } from '../broker/broker-paths.js';
import type { DaemonClient } from './daemon-client.js';
import { openOwnedBroker, openStoreClient } from '../broker/embedded-broker.js';
import type { OwnedBrokerOptions } from '../broker/embedded-broker.js';

/** Options of `openBroker`. */
export interface OpenBrokerOptions extends Partial<OwnedBrokerOptions> {
  /**
   * `owner` (default): an embedded broker owns the store (it sweeps, recovers leases, serves
   * consumers) — what `spin apply` needs. `client`: the store is only read and written (create,
   * add, enqueue, status), so it may run beside another embedded broker — the message commands.
   */
  embedded?: 'owner' | 'client';
}

/**
 * "A broker" for the CLI: the daemon of `$SPIN_HOME` when its socket answers, else the same
 * broker embedded in this process, so `spin apply` works in CI with nothing started by hand.
 * Close it when done: that releases the embedded broker's lock.
 */
export async function openBroker(options: OpenBrokerOptions = {}): Promise<Broker> {
  const home = options.home ?? spinHome();
  const paths = brokerPaths(home);
  if (existsSync(paths.socket)) {
    try {
      return await (
        await import('./daemon-client.js')
      ).DaemonClient.connect({ socketPath: paths.socket });
    } catch (error) {
      if (!(error instanceof SpinError && error.code === 'unreachable')) throw error;
      // A socket nobody answers on is left over from a daemon that died: run embedded.
    }
  }
  if (options.embedded === 'client') return openStoreClient(home);
  return openOwnedBroker({ ...options, home });
}

/** Connects to the daemon of `home`, or fails with `unreachable` (exit 4). */
export async function connectDaemon(home: string = spinHome()): Promise<DaemonClient> {
  const paths = brokerPaths(home);
  if (!existsSync(paths.socket)) {
    throw new SpinError('unreachable', `no spin daemon runs for ${home} (no ${paths.socket})`, {
      suggestions: ['start one with `spin daemon start`'],
    });
  }
  return (await import('./daemon-client.js')).DaemonClient.connect({ socketPath: paths.socket });
}
