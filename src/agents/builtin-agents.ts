import type { Agent } from './agent.js';
import type { AccelChoice } from './emulation/accel.js';
import type { AdmissionPolicy } from '../core/vm-budget.js';
import { emulationAgent, type EmulationAgentOptions } from './emulation/emulation-agent.js';
import { shellAgent } from './shell/shell-agent.js';
import { storageAgent } from './storage/storage-agent.js';

/** What the host allows the built-in agents to do. */
export interface BuiltinAgentOptions {
  /** Whether shell commands may run (`spin daemon start --allow-shell`). */
  allowShell: boolean;
  /** qemu accelerator: `auto` (default) uses KVM only where it really works. */
  accel?: AccelChoice;
  /** What of the node VM starts may take (`--cpu-overcommit`, `--reserve-memory`, …). */
  admission?: AdmissionPolicy;
  /** Whether (and as whom) the VMs this process starts are supervised: see `emulationAgent`. */
  supervise?: EmulationAgentOptions['supervise'];
}

/**
 * Every built-in agent, keyed by resource. Kept apart from registry.ts: loading and validating a
 * package needs the specs only and must not import execa or qemu code. Called by the executor's
 * agent host and by `spin agent`.
 */
export function builtinAgents(options: BuiltinAgentOptions): ReadonlyMap<string, Agent> {
  const agents = [
    storageAgent(),
    emulationAgent({
      ...(options.accel === undefined ? {} : { accel: options.accel }),
      ...(options.admission === undefined ? {} : { admission: options.admission }),
      ...(options.supervise === undefined ? {} : { supervise: options.supervise }),
    }),
    shellAgent({ allowShell: options.allowShell }),
  ];
  return new Map(agents.map((agent) => [agent.resource, agent]));
}
