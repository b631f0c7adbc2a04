import { defaults } from '../core/defaults.js';
import type { Agent, AgentAction, AgentRoots, Observation, Observer } from '../agents/agent.js';
import { agentRoots } from '../agents/agent-roots.js';
import { endEarlierAttempts } from '../agents/attempt-record.js';
import { builtinAgents } from '../agents/builtin-agents.js';
import type { AdmissionPolicy } from '../core/vm-budget.js';
import type { SupervisorRole } from '../agents/emulation/supervision-record.js';
import type { SupervisionEvent } from '../agents/emulation/vm-supervisor.js';
import { appendAuditEntry } from '../broker/audit-log.js';
import { brokerPaths } from '../broker/broker-paths.js';
import type { Broker } from '../broker/broker.js';
import { runAgents } from './agent-runner.js';

/** What a host runs: the built-in agents (shell only when allowed), or the `agents` given. */
export interface AgentHostOptions {
  allowShell: boolean;
  /** What of the node VM starts may take (the defaults unless set). */
  admission?: AdmissionPolicy;
  /**
   * Agents to use in place of the built-in ones, one per resource: the core driven in process
   * with agents of its caller's making (the tests' fake agent).
   */
  agents?: readonly Agent[];
  /**
   * Set in a long-lived process (the daemon, `spin watch`): the VMs the built-in emulation agent
   * starts are supervised by this process while it serves, as this role.
   */
  supervise?: SupervisorRole;
}

/**
 * What the VM supervisor of `home` reports, appended in order to the home's audit log beside the
 * broker's transitions. Never throws: a log that cannot be written loses the line, not the VM.
 */
export function auditSupervision(home: string): (event: SupervisionEvent) => void {
  const path = brokerPaths(home).auditLog;
  // One append after the other: lines are in the order the supervisor saw them.
  let last: Promise<void> = Promise.resolve();
  return (event) => {
    last = last.then(() => appendAuditEntry(path, event)).catch(() => undefined);
  };
}

/**
 * The agents of one SPIN_HOME, in this process (the built-in ones unless others are given): they
 * observe for the plan, say how each action is undone, and, when the broker is embedded, carry
 * out the commands.
 */
export class AgentHost {
  readonly agents: ReadonlyMap<string, Agent>;
  readonly roots: AgentRoots;
  /** Observations only read; nothing cancels them but the end of the process. */
  readonly #observing = new AbortController().signal;

  constructor(home: string, options: AgentHostOptions) {
    this.agents =
      options.agents === undefined
        ? builtinAgents({
            allowShell: options.allowShell,
            ...(options.admission === undefined ? {} : { admission: options.admission }),
            ...(options.supervise === undefined
              ? {}
              : { supervise: { role: options.supervise, onEvent: auditSupervision(home) } }),
          })
        : new Map(options.agents.map((agent) => [agent.resource, agent]));
    this.roots = agentRoots(home);
  }

  /** The action `resource`/`action` of this host's agents, with its spec; undefined if none. */
  action(resource: string, action: string): AgentAction | undefined {
    return this.agents.get(resource)?.actions.get(action);
  }

  /** Asks the owning agent what is there now; undefined when the action cannot observe. */
  readonly observe: Observer = async (command) => {
    // What a command made on another node is on that node's disk, not on this one.
    if (command.node !== undefined && command.node !== defaults.command.node) return undefined;
    const action = this.action(command.resource, command.action);
    if (action?.observe === undefined) return undefined;
    const observation: Observation = await action.observe(command.params, {
      signal: this.#observing,
      roots: this.roots,
      progress: () => undefined,
    });
    return observation;
  };

  /**
   * Ends what the agents of a broker that died left running (the process groups its attempts
   * recorded) before these agents take any command, so that a command it was running cannot
   * overlap a new run of it. The broker's recovery names those commands. Idempotent: what was
   * ended is no longer recorded.
   */
  async endInterrupted(broker: Broker): Promise<void> {
    for (const pkg of broker.recovery?.cancelled ?? []) {
      for (const commandId of pkg.interrupted) {
        await endEarlierAttempts(this.roots.home, { packageId: pkg.packageId, commandId });
      }
    }
  }

  /**
   * Runs the agents on the broker's queues until the returned function is called. An agent that
   * fails (its broker's store failed: a full disk) stops, and `onFailure` hears why at once: the
   * commands it would have run wait in vain otherwise. Stopping then resolves; it never throws.
   */
  serve(broker: Broker, onFailure: (error: unknown) => void): () => Promise<void> {
    const stop = new AbortController();
    const running = this.endInterrupted(broker)
      .then(() =>
        runAgents({
          broker,
          agents: this.agents.values(),
          roots: this.roots,
          signal: stop.signal,
        }),
      )
      .catch((error: unknown) => {
        onFailure(error);
      });
    return async () => {
      stop.abort();
      await running;
    };
  }
}
