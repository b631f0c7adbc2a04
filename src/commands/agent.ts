import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { agentRoots } from '../agents/agent-roots.js';
import { builtinAgents } from '../agents/builtin-agents.js';
import { heartbeatAdmission } from '../agents/emulation/admission.js';
import type { Agent as ResourceAgent } from '../agents/agent.js';
import { defaults } from '../core/defaults.js';
import { SpinError, messageOf } from '../core/errors.js';
import { spinHome } from '../core/spin-home.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { durationFlagMs, natsFlags, natsOptionsOf } from '../cli/nats-flags.js';
import { interruptSignal } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import type { Broker } from '../broker/broker.js';
import { connectDaemon } from '../daemon/open-broker.js';
import { auditSupervision } from '../executor/agent-host.js';
import { runAgent } from '../executor/agent-runner.js';

const resources = ['storage', 'emulation', 'shell'];

export default class Agent extends SpinCommand {
  static override summary =
    'Run agents as their own process, consuming their queues from the daemon, here or over NATS.';
  static override description =
    'Takes commands of one resource (storage, emulation or shell) from the daemon of $SPIN_HOME, one at a time, until Ctrl-C or SIGTERM; a command it holds when stopped is given back to the queue. Start the daemon with --no-agents to leave its queues to agent processes. With --nats, serves the queues of one node of a fleet (--node, --resources), sends heartbeats with its capacity, and keeps a result it could not deliver under $SPIN_HOME/outbox until the coordinator answers again. Restarted after a crash or kill -9, it takes back at once the command its predecessor held (no wait for the lease to run out), after ending what is left of the programs of that attempt; a second agent for the same node and resource on one home is refused (exit 3). Exits 4 when no daemon (or NATS) answers.';
  static override examples = [
    '<%= config.bin %> agent storage',
    '<%= config.bin %> agent shell --allow-shell',
    '<%= config.bin %> agent emulation --node local',
    '<%= config.bin %> agent emulation --reserve-memory 2G --cpu-overcommit 8',
    '<%= config.bin %> agent --nats nats://control:4222 --node nodeb --resources storage,emulation --nats-creds nodeb.creds',
  ];
  static override args = {
    resource: Args.string({
      description: 'the resource whose queue to consume (with --nats: --resources instead)',
      options: resources,
    }),
  };
  static override flags = {
    node: Flags.string({
      description: 'the node whose queues to consume',
      default: defaults.command.node,
    }),
    resources: Flags.string({
      description: 'with --nats: the resources this node serves, comma-separated',
      default: 'storage,emulation,shell',
    }),
    heartbeat: Flags.string({
      description: 'with --nats: how often to send a heartbeat (offline after three missed)',
      default: '5s',
    }),
    lease: Flags.string({
      description:
        'with --nats: lease length; a command whose agent went silent is delivered again after it',
      default: '30s',
    }),
    'allow-shell': Flags.boolean({ description: 'let the shell agent run commands' }),
    ...admissionFlags,
    ...natsFlags,
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Agent);
    const home = spinHome();
    mkdirSync(home, { recursive: true, mode: 0o700 });
    const nats = natsOptionsOf(flags);
    const names = nats === undefined ? [args.resource] : flags.resources.split(',');
    if (names[0] === undefined)
      throw new SpinError('usage', 'name the resource: spin agent storage');
    const admission = admissionPolicy(flags);
    // An emulation agent supervises the VMs it starts, for as long as it runs.
    const all = builtinAgents({
      allowShell: flags['allow-shell'],
      admission,
      supervise: { role: 'agent', onEvent: auditSupervision(home) },
    });
    const agents: ResourceAgent[] = names.map((name = '') => {
      const agent = all.get(name.trim());
      if (agent === undefined || !resources.includes(name.trim())) {
        throw new SpinError(
          'usage',
          `no agent for resource '${name}'; known: ${resources.join(', ')}`,
        );
      }
      return agent;
    });
    const interrupt = interruptSignal();
    let broker: Broker;
    let stopHeartbeats = (): void => undefined;
    if (nats === undefined) {
      broker = await connectDaemon(home);
    } else {
      const { NatsBroker } = await import('../daemon/nats-client.js');
      const { measureHeartbeat, sendHeartbeats } = await import('../daemon/node-heartbeat.js');
      const fleet = await NatsBroker.connect(nats, {
        node: flags.node,
        outbox: join(home, 'outbox'),
        holders: join(home, 'agents'),
      });
      broker = fleet;
      const intervalMs = durationFlagMs('heartbeat', flags.heartbeat);
      // Says when the coordinator stops answering and when it answers again, once each.
      let answering = true;
      const heard = (error?: unknown): void => {
        if (answering === (error === undefined)) return;
        answering = error === undefined;
        if (answering) this.log(`the coordinator answers again`);
        else this.logToStderr(`waiting for the coordinator: ${messageOf(error)}`);
      };
      stopHeartbeats = sendHeartbeats(intervalMs, () =>
        fleet
          .heartbeat(
            measureHeartbeat({
              home,
              resources: names.map((n = '') => n.trim()),
              intervalMs,
              running: fleet.running,
              ...heartbeatAdmission(home, admission),
            }),
          )
          .then(
            () => {
              heard();
            },
            (error: unknown) => {
              heard(error);
            },
          ),
      );
    }
    const what =
      nats === undefined
        ? `${names.join('')} agent consuming ${flags.node}/${names.join('')} from ${home}`
        : `agent of node ${flags.node} consuming ${names.join(', ')} from ${nats.url} (fleet ${nats.fleet})`;
    this.log(what);
    try {
      await Promise.all(
        agents.map((agent) =>
          runAgent({
            broker,
            agent,
            roots: agentRoots(home),
            node: flags.node,
            ...(nats === undefined ? {} : { leaseMs: durationFlagMs('lease', flags.lease) }),
            holder: `${agent.resource}-agent@${hostname()}:${String(process.pid)}`,
            signal: interrupt.signal,
          }),
        ),
      );
    } finally {
      stopHeartbeats();
      interrupt.dispose();
      await broker.close();
    }
    this.log(
      nats === undefined
        ? `${names.join('')} agent stopped`
        : `agent of node ${flags.node} stopped`,
    );
  }
}
