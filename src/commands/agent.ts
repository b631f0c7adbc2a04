import { hostname } from 'node:os';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { agentRoots } from '../agents/agent-roots.js';
import { builtinAgents } from '../agents/builtin-agents.js';
import { defaults } from '../core/defaults.js';
import { SpinError } from '../core/errors.js';
import { spinHome } from '../core/spin-home.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { interruptSignal } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { connectDaemon } from '../daemon/open-broker.js';
import { auditSupervision } from '../executor/agent-host.js';
import { runAgent } from '../executor/agent-runner.js';

export default class Agent extends SpinCommand {
  static override summary =
    'Run one agent as its own process, consuming its queue from the daemon.';
  static override description =
    'Takes commands of one resource (storage, emulation or shell) from the daemon of $SPIN_HOME, one at a time, until Ctrl-C or SIGTERM; a command it holds when stopped is given back to the queue. Start the daemon with --no-agents to leave its queues to agent processes. Exits 4 when no daemon answers.';
  static override examples = [
    '<%= config.bin %> agent storage',
    '<%= config.bin %> agent shell --allow-shell',
    '<%= config.bin %> agent emulation --node local',
    '<%= config.bin %> agent emulation --reserve-memory 2G --cpu-overcommit 8',
  ];
  static override args = {
    resource: Args.string({
      description: 'the resource whose queue to consume',
      required: true,
      options: ['storage', 'emulation', 'shell'],
    }),
  };
  static override flags = {
    node: Flags.string({
      description: 'the node whose queue to consume',
      default: defaults.command.node,
    }),
    'allow-shell': Flags.boolean({ description: 'let the shell agent run commands' }),
    ...admissionFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Agent);
    const home = spinHome();
    // An emulation agent supervises the VMs it starts, for as long as it runs.
    const agent = builtinAgents({
      allowShell: flags['allow-shell'],
      admission: admissionPolicy(flags),
      supervise: { role: 'agent', onEvent: auditSupervision(home) },
    }).get(args.resource);
    if (agent === undefined)
      throw new SpinError('usage', `no agent for resource '${args.resource}'`);
    const broker = await connectDaemon(home);
    const interrupt = interruptSignal();
    this.log(`${args.resource} agent consuming ${flags.node}/${args.resource} from ${home}`);
    try {
      await runAgent({
        broker,
        agent,
        roots: agentRoots(home),
        node: flags.node,
        holder: `${args.resource}-agent@${hostname()}:${String(process.pid)}`,
        signal: interrupt.signal,
      });
    } finally {
      interrupt.dispose();
      await broker.close();
    }
    this.log(`${args.resource} agent stopped`);
  }
}
