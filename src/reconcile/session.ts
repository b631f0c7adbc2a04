import type { Agent } from '../agents/agent.js';
import type { Broker } from '../broker/broker.js';
import { openBroker } from '../daemon/open-broker.js';
import { AgentHost } from '../executor/agent-host.js';
import { openLockedState, type LockedState } from './locked-state.js';
import type { LockHolder } from './state-lock.js';
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
  /**
   * The agents that observe, undo and (with the embedded broker) carry out commands, in place of
   * the built-in ones: for driving the core in process with agents the caller controls.
   */
  agents?: readonly Agent[];
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
  readonly #locked: LockedState;
  #broker: Promise<Broker> | undefined;
  #stopAgents: (() => Promise<void>) | undefined;
  #changed = false;

  private constructor(home: string, locked: LockedState, host: AgentHost) {
    this.home = home;
    this.#locked = locked;
    this.host = host;
  }

  static async open(options: SessionOptions): Promise<ReconcileSession> {
    const locked = await openLockedState(options.statePath, {
      timeoutMs: options.lockTimeoutMs ?? 0,
      command: options.command,
      ...(options.onLockWait === undefined ? {} : { onWait: options.onLockWait }),
    });
    return new ReconcileSession(
      options.home,
      locked,
      new AgentHost(options.home, {
        allowShell: options.allowShell ?? false,
        ...(options.agents === undefined ? {} : { agents: options.agents }),
      }),
    );
  }

  get state(): StateFile {
    return this.#locked.state;
  }

  /** The broker: the daemon when it answers, else an embedded one served by the host's agents. */
  broker(): Promise<Broker> {
    this.#broker ??= openBroker({ home: this.home }).then((broker) => {
      if (broker.kind === 'embedded') this.#stopAgents = this.host.serve(broker);
      return broker;
    });
    return this.#broker;
  }

  /** Notes that the state data was changed outside a run, so `close` writes it. */
  changed(): void {
    this.#changed = true;
  }

  /**
   * Stops the agents, closes the broker, writes the state a last time if anything ran or changed
   * (a plan writes nothing), and releases the lock.
   */
  async close(): Promise<void> {
    try {
      await this.#stopAgents?.();
      if (this.#broker !== undefined) await (await this.#broker).close();
      if (this.#broker !== undefined || this.#changed) await this.state.save();
    } finally {
      await this.#locked.release();
    }
  }
}
