import { join } from 'node:path';
import type { AgentRoots } from './agent.js';

/**
 * The agent roots under one spin home (`$SPIN_HOME`); nothing is created here. Each root is a
 * directory directly under the home, which is what confinePath and confineRoot rely on: they
 * open a root only as a real directory of the home, never through a symbolic link.
 */
export function agentRoots(home: string): AgentRoots {
  return { home, images: join(home, 'images'), vms: join(home, 'vms'), work: join(home, 'work') };
}
