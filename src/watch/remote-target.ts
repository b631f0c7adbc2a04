import { basename } from 'node:path';
import { SpinError } from '../core/errors.js';
import type { NatsOptions } from '../daemon/nats-connection.js';
import type { ReconcileSummary } from '../reconcile/events.js';
import { applyRemoteFiles, destroyRemote } from '../reconcile/remote-apply.js';
import { remoteStatus } from '../reconcile/remote-status.js';
import type { TargetRun, WatchApplyOptions, WatchedPackage, WatchTarget } from './watch-target.js';

/** How a watch's runs on the coordinator go, besides the apply options. */
export interface RemoteTargetOptions extends WatchApplyOptions {
  /** Let the coordinator's agents run shell commands, where they leave it to the request. */
  allowShell: boolean;
  /** How long a run waits for the coordinator's state lock while another run holds it. */
  lockTimeoutMs?: number;
}

/**
 * A watch through a fleet's coordinator (`spin watch --nats`): each apply sends the package's
 * text as the watch last read it valid, and the coordinator plans it against its own state and
 * runs it on the fleet, streaming the progress back; a destroy runs there too. Nothing is kept
 * on this machine, and each call opens its own connection, so a coordinator or NATS that cannot
 * be reached fails that call alone (`unreachable`) and the next one tries afresh.
 */
export class RemoteTarget implements WatchTarget {
  readonly parallel = false;
  readonly #nats: NatsOptions;
  readonly #options: RemoteTargetOptions;

  constructor(nats: NatsOptions, options: RemoteTargetOptions) {
    this.#nats = nats;
    this.#options = options;
  }

  apply(watched: WatchedPackage, run: TargetRun): Promise<ReconcileSummary> {
    const { prune, allowReplace, allowShell, nodeWaitMs, lockTimeoutMs } = this.#options;
    return applyRemoteFiles({
      nats: this.#nats,
      files: [{ name: basename(watched.pkg.file), text: watched.text }],
      request: {
        prune,
        allowReplace,
        allowShell,
        ...(nodeWaitMs === undefined ? {} : { nodeWaitMs }),
        ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
      },
      ...run,
    });
  }

  async holds(name: string): Promise<boolean> {
    try {
      await remoteStatus(this.#nats, { name });
      return true;
    } catch (error) {
      if (error instanceof SpinError && error.code === 'not_found') return false;
      throw error;
    }
  }

  destroy(name: string, run: TargetRun): Promise<ReconcileSummary> {
    const { lockTimeoutMs } = this.#options;
    return destroyRemote({
      nats: this.#nats,
      packages: [name],
      ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }),
      ...run,
    });
  }

  /** None: the coordinator's state names its own copies of the files, not this machine's. */
  recorded(): { name: string; file: string }[] {
    return [];
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
