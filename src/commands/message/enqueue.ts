import * as Args from '@oclif/core/args';
import { SpinCommand } from '../../cli/spin-command.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message enqueue`: hands all of a package's commands to their queues at once. */
export default class MessageEnqueue extends SpinCommand {
  static override description =
    "Enqueue a package: all of its commands enter their (node, resource) queues in one transaction. Enqueuing twice is harmless. Prints the package's state.";
  static override examples = ['<%= config.bin %> message enqueue p-1a2b'];
  static override args = {
    package: Args.string({ description: 'the package id', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(MessageEnqueue);
    const broker = await openBroker({ embedded: 'client' });
    try {
      this.log(await broker.enqueue(args.package));
    } finally {
      await broker.close();
    }
  }
}
