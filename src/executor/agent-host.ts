import type { Agent, AgentRoots, Observation, Observer } from '../agents/agent.js';
import { agentRoots } from '../agents/agent-roots.js';
import { builtinAgents } from '../agents/builtin-agents.js';
import type { Broker } from '../broker/broker.js';
import { runAgents } from './agent-runner.js';

/**
 * The built-in agents of one SPIN_HOME, in this process: they observe for the plan and, when the
 * broker is embedded, carry out the commands.
 */
export class AgentHost {
  readonly agents: ReadonlyMap<string, Agent>;
  readonly roots: AgentRoots;
  /** Observations only read; nothing cancels them but the end of the process. */
  readonly #observing = new AbortController().signal;

  constructor(home: string, options: { allowShell: boolean }) {
    this.agents = builtinAgents({ allowShell: options.allowShell });
    this.roots = agentRoots(home);
  }

  /** Asks the owning agent what is there now; undefined when the action cannot observe. */
  readonly observe: Observer = async (command) => {
    const action = this.agents.get(command.resource)?.actions.get(command.action);
    if (action?.observe === undefined) return undefined;
    const observation: Observation = await action.observe(command.params, {
      signal: this.#observing,
      roots: this.roots,
      progress: () => undefined,
    });
    return observation;
  };

  /** The params of the inverse of a command, as its action maps them. */
  inverseParams(
    resource: string,
    action: string,
    params: Record<string, unknown>,
  ): Record<string, unknown> {
    const map = this.agents.get(resource)?.actions.get(action)?.inverseParams;
    return map ? map(params) : params;
  }

  /** Runs the agents on the broker's queues until the returned function is called. */
  serve(broker: Broker): () => Promise<void> {
    const stop = new AbortController();
    const running = runAgents({
      broker,
      agents: this.agents.values(),
      roots: this.roots,
      signal: stop.signal,
    });
    return async () => {
      stop.abort();
      await running;
    };
  }
}
