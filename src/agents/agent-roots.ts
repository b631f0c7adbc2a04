import { join } from 'node:path';
import type { AgentRoots } from './agent.js';

/** The agent roots under one spin home (`$SPIN_HOME`); nothing is created here. */
export function agentRoots(home: string): AgentRoots {
  return { home, images: join(home, 'images'), vms: join(home, 'vms'), work: join(home, 'work') };
}
