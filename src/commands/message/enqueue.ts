import * as Args from '@oclif/core/args';
import { SpinCommand } from '../../cli/spin-command.js';
import { ExitCode } from '../../core/exit-codes.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message enqueue`: hands all of a package's commands to their queues at once. */
export default class MessageEnqueue extends SpinCommand {
  static override description =
    "Enqueue a package: all of its commands enter their (node, resource) queues in one transaction. Enqueuing twice is harmless. Prints the package's state; exits 1 when nothing of it will run (it expired before it was enqueued, or was cancelled).";
  static override examples = ['<%= config.bin %> message enqueue p-1a2b'];
  static override args = {
    package: Args.string({ description: 'the package id', required: true }),
  };

  async run(): Promise<void> {
    const { args } = await this.parse(MessageEnqueue);
    const broker = await openBroker({ embedded: 'client' });
    let failed = false;
    try {
      const state = await broker.enqueue(args.package);
      this.log(state);
      // Nothing of it will run: it expired before it was enqueued, or was cancelled.
      if (state === 'expired' || state === 'cancelled') failed = true;
    } finally {
      await broker.close();
    }
    if (failed) await this.exitWith(ExitCode.commandFailed);
  }
}
