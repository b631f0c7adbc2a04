import type { AdmissionPolicy } from '../core/vm-budget.js';
import type { PackageSpec } from '../core/package.js';
import { applyIn } from '../reconcile/apply.js';
import { destroyIn } from '../reconcile/destroy.js';
import type { ReconcileListener, ReconcileSummary } from '../reconcile/events.js';
import { ReconcileSession } from '../reconcile/session.js';

/** A package as a watch last read it valid: what it defines, and the text it was read from. */
export interface WatchedPackage {
  pkg: PackageSpec;
  text: string;
}

/** One apply or destroy of a watch: how to stop it, and where its events go. */
export interface TargetRun {
  signal: AbortSignal;
  emit: ReconcileListener;
}

/** How every apply of a watch runs, wherever it runs. */
export interface WatchApplyOptions {
  /** Undo commands removed from a file (see ReconcileOptions.prune). */
  prune: boolean;
  /** See ReconcileOptions.allowReplace. */
  allowReplace: boolean;
  /** See ReconcileOptions.nodeWaitMs. */
  nodeWaitMs?: number;
}

/**
 * Where a watch carries out its applies and destroys, against which state: this machine
 * (`SessionTarget`) or a fleet's coordinator over NATS (`RemoteTarget`). The watch loop — files,
 * settling, scheduling, resync, prune — is the same for both. Calls for one package never
 * overlap; calls for different packages may.
 */
export interface WatchTarget {
  /**
   * Whether packages may be reconciled side by side: in one session here, yes; a coordinator
   * gives each run its state's lock in turn, so its runs go one at a time.
   */
  readonly parallel: boolean;
  /** Makes the machine match one package as it was last read valid; resolves with the summary. */
  apply(watched: WatchedPackage, run: TargetRun): Promise<ReconcileSummary>;
  /** Whether the state holds the package: a removed file's package is destroyed only then. */
  holds(name: string): Promise<boolean>;
  /** Undoes everything a package of the state made, and forgets it. */
  destroy(name: string, run: TargetRun): Promise<ReconcileSummary>;
  /**
   * The packages of the state with the files they were applied from, as this machine names
   * them: how a watch finds packages whose file was removed while nobody watched. Empty when
   * the state names files that are not this machine's.
   */
  recorded(): { name: string; file: string }[];
  /** Releases what the target holds; nothing is called after. */
  close(): Promise<void>;
}

/** What a watch on this machine's state needs besides the apply options. */
export interface SessionTargetOptions extends WatchApplyOptions {
  home: string;
  statePath: string;
  lockTimeoutMs?: number;
  allowShell?: boolean;
  admission?: AdmissionPolicy;
  /** Reconcile once: the command recorded is `spin watch --once`, and no VM is supervised. */
  once: boolean;
  /** Hears what recovering from a spin that died recorded (`recovered`). */
  recovered: ReconcileListener;
}

/**
 * A watch on this machine: one ReconcileSession (the state lock, the agents, the broker) held
 * for the watch's whole life, in which applies of different packages run side by side.
 */
export class SessionTarget implements WatchTarget {
  readonly parallel = true;
  readonly #session: ReconcileSession;
  readonly #options: WatchApplyOptions;

  private constructor(session: ReconcileSession, options: WatchApplyOptions) {
    this.#session = session;
    this.#options = options;
  }

  /**
   * Takes the state's lock and the agents (a watch that lasts supervises the VMs its own agents
   * start, with no daemon to do it), then settles what a spin that died left in the broker
   * before the first plan, as an apply does. Throws when the state is locked.
   */
  static async open(options: SessionTargetOptions): Promise<SessionTarget> {
    const session = await ReconcileSession.open({
      home: options.home,
      statePath: options.statePath,
      command: options.once ? 'spin watch --once' : 'spin watch',
      ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
      ...(options.allowShell === undefined ? {} : { allowShell: options.allowShell }),
      ...(options.admission === undefined ? {} : { admission: options.admission }),
      ...(options.once ? {} : { supervise: 'watch' as const }),
    });
    try {
      await session.recover(options.recovered);
    } catch (error) {
      await session.close();
      throw error;
    }
    return new SessionTarget(session, {
      prune: options.prune,
      allowReplace: options.allowReplace,
      ...(options.nodeWaitMs === undefined ? {} : { nodeWaitMs: options.nodeWaitMs }),
    });
  }

  apply(watched: WatchedPackage, run: TargetRun): Promise<ReconcileSummary> {
    return applyIn(this.#session, { ...this.#options, packages: [watched.pkg], ...run });
  }

  holds(name: string): Promise<boolean> {
    return Promise.resolve(Object.hasOwn(this.#session.state.data.packages, name));
  }

  destroy(name: string, run: TargetRun): Promise<ReconcileSummary> {
    return destroyIn(this.#session, { packages: [name], ...run });
  }

  recorded(): { name: string; file: string }[] {
    return Object.entries(this.#session.state.data.packages).map(([name, pkg]) => ({
      name,
      file: pkg.file,
    }));
  }

  close(): Promise<void> {
    return this.#session.close();
  }
}
