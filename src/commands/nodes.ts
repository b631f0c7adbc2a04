import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { natsFlags, natsOptionsOf } from '../cli/nats-flags.js';
import { renderNodes } from '../cli/render-nodes.js';
import { SpinCommand } from '../cli/spin-command.js';
import { spinHome } from '../core/spin-home.js';
import type { NodeStatus } from '../daemon/node-registry.js';
import { connectDaemon } from '../daemon/open-broker.js';

export default class Nodes extends SpinCommand {
  static override summary = "List the fleet's nodes: online or offline, capacity and use.";
  static override description =
    'Asks the coordinator (the daemon of $SPIN_HOME, or with --nats the one of the fleet) for every node that ever sent a heartbeat: online, or offline after three missed heartbeats (since when), its last heartbeat, CPUs, memory and free disk with what is in use, the resources it serves, its running VMs, and what it has free for VMs under the admission flags of its own agent (FREE FOR VMS; in JSON `freeForVms`, with what it was worked out from in `admission`). Exits 4 when no coordinator answers.';
  static override examples = [
    '<%= config.bin %> nodes',
    '<%= config.bin %> nodes --output json',
    '<%= config.bin %> nodes --nats nats://control:4222 --nats-user operator',
  ];
  static override flags = { ...documentOutputFlags(['text', 'json']), ...natsFlags };

  async run(): Promise<void> {
    const { flags } = await this.parse(Nodes);
    const nats = natsOptionsOf(flags);
    let nodes: NodeStatus[];
    if (nats === undefined) {
      const client = await connectDaemon(spinHome());
      try {
        nodes = await client.nodes();
      } finally {
        await client.close();
      }
    } else {
      const { NatsBroker } = await import('../daemon/nats-client.js');
      const client = await NatsBroker.connect(nats);
      try {
        nodes = await client.nodes();
      } finally {
        await client.close();
      }
    }
    if (documentOutput(flags) === 'json') {
      this.printDocument('nodes', { nodes });
      return;
    }
    for (const line of renderNodes(nodes, Date.now())) this.log(line);
  }
}
