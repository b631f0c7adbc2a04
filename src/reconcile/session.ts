import { resolve } from 'node:path';
import { SpinError } from '../core/errors.js';
import type { Agent } from '../agents/agent.js';
import { defaultAdmission, type AdmissionPolicy, type ReportedBudgets } from '../core/vm-budget.js';
import type { SupervisorRole } from '../agents/emulation/supervision-record.js';
import type { Broker } from '../broker/broker.js';
import { openBroker } from '../daemon/open-broker.js';
import { AgentHost } from '../executor/agent-host.js';
import { openLockedState, type LockedState } from './locked-state.js';
import { daemonBudgets } from './reported-budgets.js';
import type { LockHolder } from './state-lock.js';
import type { ReconcileListener } from './events.js';
import { finishedChanges } from './record-outcome.js';
import type { PackageMeta } from './run-packages.js';
import type { StateFile } from './state-file.js';

/** What a session needs: where spin lives, which state, and how long to wait for its lock. */
export interface SessionOptions {
  home: string;
  statePath: string;
  lockTimeoutMs?: number;
  /** Hears of each holder of the state lock that the session waits for. */
  onLockWait?: (holder: LockHolder) => void;
  command: string;
  allowShell?: boolean;
  /** What of the node this process's VM starts may take (`--cpu-overcommit`, …). */
  admission?: AdmissionPolicy;
  /**
   * What the coordinator knows of other nodes' room for VMs, for the plan's warnings: its daemon
   * is asked over the socket unless this is given (the coordinator's own process passes its
   * registry).
   */
  reported?: ReportedBudgets;
  /**
   * The agents that observe, undo and (with the embedded broker) carry out commands, in place of
   * the built-in ones: for driving the core in process with agents the caller controls.
   */
  agents?: readonly Agent[];
  /**
   * Whether this process supervises the VMs its agents start, as whom (`spin watch`); unset for
   * a one-shot apply. Only with the embedded broker: a daemon's agents supervise their own.
   */
  supervise?: SupervisorRole;
}

/**
 * Everything one process needs to reconcile: the state file with its lock held, the agents (the
 * built-in ones unless others are given; for observing, undoing, and carrying out commands when
 * the broker is embedded), and the broker, opened on first use. `spin apply` opens one for a
 * single apply; `spin watch` keeps one for its lifetime and runs applies of independent
 * packages in it side by side.
 */
export class ReconcileSession {
  readonly home: string;
  readonly host: AgentHost;
  /** The spin command this session runs for, recorded on the packages it submits. */
  readonly command: string;
  /** The state file, as an absolute path: how packages name the state they report to. */
  readonly statePath: string;
  /** Whether this process's agents may run shell commands (`--allow-shell`). */
  readonly allowShell: boolean;
  /** What of the node this process's VM starts may take; the plan's warnings count with it. */
  readonly admission: AdmissionPolicy;
  /** What the coordinator knows of other nodes' room for VMs; the plan's warnings count with it. */
  readonly reported: ReportedBudgets;
  readonly #locked: LockedState;
  #broker: Promise<Broker> | undefined;
  #stopAgents: (() => Promise<void>) | undefined;
  #failAgents: (error: unknown) => void = () => undefined;
  /** The state's serial when the session opened, and whether the session changed the state. */
  readonly #openedSerial: number;
  #changed = false;
  /**
   * Rejects when this process's agents fail (their store failed: a full disk): what waits for
   * their commands should stop waiting. Never resolves.
   */
  readonly agentsFailed = new Promise<never>((_resolve, reject) => {
    this.#failAgents = reject;
  });

  private constructor(
    options: Pick<
      SessionOptions,
      'home' | 'command' | 'statePath' | 'allowShell' | 'admission' | 'reported'
    >,
    locked: LockedState,
    host: AgentHost,
  ) {
    this.agentsFailed.catch(() => undefined); // observed by the runs that wait on it
    this.home = options.home;
    this.command = options.command;
    this.statePath = resolve(options.statePath);
    this.allowShell = options.allowShell ?? false;
    this.admission = options.admission ?? defaultAdmission;
    this.reported = options.reported ?? daemonBudgets(options.home);
    this.#locked = locked;
    this.host = host;
    this.#openedSerial = locked.state.data.serial;
  }

  static async open(options: SessionOptions): Promise<ReconcileSession> {
    const locked = await openLockedState(options.statePath, {
      timeoutMs: options.lockTimeoutMs ?? 0,
      command: options.command,
      ...(options.onLockWait === undefined ? {} : { onWait: options.onLockWait }),
    });
    return new ReconcileSession(
      options,
      locked,
      new AgentHost(options.home, {
        allowShell: options.allowShell ?? false,
        ...(options.admission === undefined ? {} : { admission: options.admission }),
        ...(options.agents === undefined ? {} : { agents: options.agents }),
        ...(options.supervise === undefined ? {} : { supervise: options.supervise }),
      }),
    );
  }

  get state(): StateFile {
    return this.#locked.state;
  }

  /** The broker: the daemon when it answers, else an embedded one served by the host's agents. */
  broker(): Promise<Broker> {
    this.#broker ??= openBroker({ home: this.home, command: this.command }).then((broker) => {
      if (broker.kind === 'embedded') {
        this.#stopAgents = this.host.serve(broker, (error) => {
          this.#failAgents(error);
        });
      }
      return broker;
    });
    return this.#broker;
  }

  /**
   * Opens the broker and, when this opening cancelled the packages of an earlier spin that died
   * (`QueueStore.recover`), records in the state what those packages of this state finished, so
   * the plan sees what the machine has; then reports it (`recovered`). A record the state already
   * has from later is kept.
   */
  async recover(emit: ReconcileListener): Promise<void> {
    const broker = await this.broker();
    await this.#claimState(broker);
    const cancelled = broker.recovery?.cancelled ?? [];
    if (cancelled.length === 0) return;
    // What the dead spin's agents were running may still run in its process groups: end it
    // before anything runs again (the daemon's agents do the same when it starts).
    await this.host.endInterrupted(broker);
    const changes = cancelled.flatMap((pkg) => {
      const meta = pkg.meta as PackageMeta | undefined;
      if (meta?.statePath !== this.statePath) return [];
      return finishedChanges(this.state.data, pkg.name, meta, pkg.finished);
    });
    await Promise.all(changes.map((change) => this.state.change(change)));
    if (changes.length > 0) this.#changed = true;
    emit({ type: 'recovered', cancelled, recorded: changes.length });
  }

  /**
   * Tells the broker which state this session reconciles, and refuses a state file that another
   * one has replaced with a different lineage (copied from another home, say): this home's
   * broker and that state would be two truths. A state begun afresh (serial 0: the file was
   * moved aside) is adopted.
   */
  async #claimState(broker: Broker): Promise<void> {
    const { lineage, serial } = this.state.data;
    const known = await broker.claimState(this.statePath, lineage, serial === 0);
    if (known === undefined) return;
    throw new SpinError(
      'state_conflict',
      `${this.statePath} has lineage ${lineage}, but this home's broker has served it as lineage ${known}: the file was replaced by a state from elsewhere`,
      {
        details: { statePath: this.statePath, lineage, known },
        suggestions: [
          `Put back this home's state (its backup is ${this.statePath}.backup), or pass the other state with --state and the SPIN_HOME it belongs to.`,
          'To start this home afresh with no state, move the file aside: the next apply plans everything anew.',
        ],
      },
    );
  }

  /**
   * Forgets a command's record outside a run (its undo leaves nothing to do); durable once the
   * promise resolves, and at the latest when the session closes.
   */
  forget(pkg: string, id: string): Promise<void> {
    this.#changed = true;
    const saved = this.state.change({ op: 'forget', package: pkg, id });
    saved.catch(() => undefined); // a failed write fails `close` too
    return saved;
  }

  /**
   * Stops the agents, closes the broker, folds what was journaled into the state file (a plan
   * writes nothing), and releases the lock.
   */
  async close(): Promise<void> {
    try {
      await this.#stopAgents?.();
      if (this.#broker !== undefined) await (await this.#broker).close();
      // Every change to the state raises its serial, so a plan made before it is seen as stale;
      // a run raises it as it starts, a recovery or a forget outside a run here.
      if (this.#changed && this.state.data.serial === this.#openedSerial)
        await this.state.change({ op: 'serial', serial: this.#openedSerial + 1 });
      await this.state.close();
    } finally {
      await this.#locked.release();
    }
  }
}
