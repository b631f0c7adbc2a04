import * as Args from '@oclif/core/args';
import { SpinCommand } from '../../cli/spin-command.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message cancel`: cancels what of a package has not run, and prints its state. */
export default class MessageCancel extends SpinCommand {
  static override description =
    "Cancel a package: its commands that have not run are cancelled (a running one is stopped by its agent), and the package's state is printed. Cancelling a finished package changes nothing.";
  static override examples = ['<%= config.bin %> message cancel p-1a2b'];
  static override args = {
    package: Args.string({ description: 'the package id', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(MessageCancel);
    const broker = await openBroker({ embedded: 'client' });
    try {
      this.log(`package ${args.package}: ${await broker.cancel(args.package)}`);
    } finally {
      await broker.close();
    }
  }
}
