import * as Args from '@oclif/core/args';
import { documentOutput, documentOutputFlags } from '../../cli/reconcile-flags.js';
import { SpinCommand } from '../../cli/spin-command.js';
import { ExitCode } from '../../core/exit-codes.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message status`: every command's state and reason; exit 1 when any failed. */
export default class MessageStatus extends SpinCommand {
  static override description =
    "Show a package's state and each command's state and reason. Exits 0 when all succeeded or the package is still running, 1 when any command failed or the package was cancelled or expired.";
  static override examples = [
    '<%= config.bin %> message status p-1a2b',
    '<%= config.bin %> message status p-1a2b --json',
  ];
  static override args = {
    package: Args.string({ description: 'the package id', required: true }),
  };
  static override flags = { ...documentOutputFlags(['text', 'json']) };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(MessageStatus);
    const broker = await openBroker({ embedded: 'client' });
    let failed: boolean;
    try {
      const status = await broker.status(args.package);
      failed = ['failed', 'cancelled', 'expired'].includes(status.state);
      if (documentOutput(flags) === 'json') {
        this.printDocument('message-status', { ...status });
      } else {
        this.log(`package ${status.id} (${status.name}): ${status.state}`);
        for (const c of status.commands) {
          const reason = c.reason === undefined ? '' : `  ${c.reason}`;
          this.log(
            `  ${c.id.padEnd(12)} ${c.resource} ${c.action}`.padEnd(44) + ` ${c.state}${reason}`,
          );
        }
      }
    } finally {
      await broker.close();
    }
    if (failed) await this.exitWith(ExitCode.commandFailed);
  }
}
