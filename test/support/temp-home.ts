import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ActionContext, ActionResult, Agent } from '../../src/agents/agent.js';
import { agentRoots } from '../../src/agents/agent-roots.js';

/** A temporary SPIN_HOME of one test, with a way to run its agents' actions. */
export interface TempHome {
  home: string;
  /** A context under this home; `progress` lines are collected in `lines`. */
  ctx(signal?: AbortSignal): ActionContext;
  lines: string[];
  run(
    agent: Agent,
    action: string,
    params: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<ActionResult>;
  cleanup(): Promise<void>;
}

/** Makes a fresh temp SPIN_HOME (never ~/.config/spin). */
export async function makeTempHome(prefix = 'spin-agents-'): Promise<TempHome> {
  const home = await mkdtemp(join(tmpdir(), prefix));
  const lines: string[] = [];
  const ctx = (signal: AbortSignal = new AbortController().signal): ActionContext => ({
    signal,
    roots: agentRoots(home),
    progress: (line) => lines.push(line),
  });
  return {
    home,
    lines,
    ctx,
    run(agent, action, params, signal) {
      const impl = agent.actions.get(action);
      if (impl === undefined) throw new Error(`no action ${agent.resource}/${action}`);
      return impl.run(params, ctx(signal));
    },
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}
