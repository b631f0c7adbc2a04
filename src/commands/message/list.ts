import * as Flags from '@oclif/core/flags';
import { documentOutput, documentOutputFlags } from '../../cli/reconcile-flags.js';
import { SpinCommand } from '../../cli/spin-command.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message list`: the broker's packages, newest first. */
export default class MessageList extends SpinCommand {
  static override description =
    "List the broker's packages, newest first: id, name, state, commands and how many are unfinished.";
  static override examples = [
    '<%= config.bin %> message list',
    '<%= config.bin %> message list --limit 10 --json',
  ];
  static override flags = {
    limit: Flags.integer({ description: 'how many packages at most', default: 100, min: 1 }),
    ...documentOutputFlags(['text', 'json']),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(MessageList);
    const broker = await openBroker({ embedded: 'client' });
    try {
      const packages = await broker.listPackages(flags.limit);
      if (documentOutput(flags) === 'json') {
        this.printDocument('message-list', { packages });
        return;
      }
      if (packages.length === 0) this.log('no packages');
      for (const p of packages) {
        const when = new Date(p.createdAt).toISOString();
        this.log(
          `${p.id}  ${p.name.padEnd(20)} ${p.state.padEnd(10)} ${String(p.commands)} commands, ${String(p.unfinished)} unfinished  ${when}`,
        );
      }
    } finally {
      await broker.close();
    }
  }
}
