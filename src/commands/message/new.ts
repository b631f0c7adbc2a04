import * as Flags from '@oclif/core/flags';
import { SpinCommand } from '../../cli/spin-command.js';
import { durationToMs } from '../../core/duration.js';
import { SpinError } from '../../core/errors.js';
import { openBroker } from '../../daemon/open-broker.js';

/** `spin message new`: creates an empty package and prints its id. */
export default class MessageNew extends SpinCommand {
  static override description =
    'Create an empty package and print its id. Add commands with `spin message add`, then `spin message enqueue` it; a package never enqueued expires after --ttl.';
  static override examples = [
    '<%= config.bin %> message new',
    '<%= config.bin %> message new --name vm-demo --ttl 30m',
  ];
  static override flags = {
    name: Flags.string({ description: 'a label for people' }),
    ttl: Flags.string({ description: 'how long the package lives unless enqueued (e.g. 10m)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(MessageNew);
    const ttlMs = flags.ttl === undefined ? undefined : durationToMs(flags.ttl);
    if (flags.ttl !== undefined && ttlMs === undefined) {
      throw new SpinError('usage', `--ttl ${flags.ttl} is not a duration like 30s or 10m`);
    }
    const broker = await openBroker({ embedded: 'client' });
    try {
      const id = await broker.createPackage({
        ...(flags.name === undefined ? {} : { name: flags.name }),
        ...(ttlMs === undefined ? {} : { ttlMs }),
      });
      this.log(id);
    } finally {
      await broker.close();
    }
  }
}
