import * as Args from '@oclif/core/args';
import { resolveHome, stateFlags } from '../cli/reconcile-flags.js';
import { documentOutput, documentOutputFlags } from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { liveBrokerView, nodeWaits } from '../cli/live-broker-view.js';
import { natsFlags, natsOptionsOf, refuseLocalFlags } from '../cli/nats-flags.js';
import { supervisionText } from '../cli/render-supervision.js';
import { stateStatus } from '../reconcile/status.js';

export default class Status extends SpinCommand {
  static override summary = 'Show applied packages, their commands and VMs.';
  static override description =
    "Reads the state file: every package with each command's last result, and whether each VM runs now, who supervises it, its restarts and why it last ended. Where a daemon runs, also its packages in flight.";
  static override examples = [
    '<%= config.bin %> status',
    '<%= config.bin %> status vm-demo',
    '<%= config.bin %> status --json',
    "<%= config.bin %> status --nats nats://control:4222   # the coordinator's state",
  ];
  static override args = { package: Args.string({ description: 'only this package' }) };
  static override flags = {
    ...documentOutputFlags(['text', 'json']),
    state: stateFlags.state,
    ...natsFlags,
  };

  async run(): Promise<void> {
    const { args, flags, raw } = await this.parse(Status);
    const where = resolveHome(flags);
    const nats = natsOptionsOf(flags);
    if (nats !== undefined) refuseLocalFlags(raw);
    const name = args.package === undefined ? {} : { name: args.package };
    const status =
      nats === undefined
        ? await stateStatus({ ...where, ...name })
        : await (await import('../reconcile/remote-status.js')).remoteStatus(nats, name);
    const live = nats === undefined ? await liveBrokerView(where.home) : undefined;
    if (documentOutput(flags) === 'json') {
      this.printDocument('status', { ...status, daemon: live });
      return;
    }
    if (status.packages.length === 0) this.log('No packages applied yet.');
    for (const pkg of status.packages) {
      this.log(
        `${pkg.name}  (${fileText(pkg.file, nats !== undefined)}, applied ${pkg.appliedAt})`,
      );
      const width = Math.max(...pkg.commands.map((c) => c.id.length));
      for (const c of pkg.commands) {
        const supervision = supervisionText(c.supervision);
        const vm =
          c.vm === undefined ? '' : `  vm ${c.vm}${supervision === '' ? '' : `, ${supervision}`}`;
        const error =
          c.error !== undefined ? `  ${c.error}` : c.reason !== undefined ? `  ${c.reason}` : '';
        this.log(
          `  ${c.id.padEnd(width)}  ${c.status.padEnd(9)}  ${c.resource}.${c.action}${vm}${error}`,
        );
      }
    }
    if (live !== undefined) {
      this.log(
        `\ndaemon: ${String(live.length)} package${live.length === 1 ? '' : 's'} in its store`,
      );
      const shown = live.slice(0, 10);
      const waits = await nodeWaits(where.home, shown);
      for (const p of shown) {
        this.log(
          `  ${p.id}  ${p.name}  ${p.state}  ${String(p.unfinished)}/${String(p.commands)} unfinished`,
        );
        for (const w of waits.get(p.id) ?? []) this.log(`    ${w.id}  ${w.reason}`);
      }
    }
  }
}

/**
 * A package's file as a person reads it. Over NATS, a file some CLI sent to the coordinator is
 * named as it was sent: its path under the coordinator's `remote/<run>/` means nothing here.
 */
function fileText(file: string, remote: boolean): string {
  const sent = remote ? /\/remote\/[a-zA-Z0-9_-]{8,64}\/\d+\/([^/]+)$/.exec(file) : null;
  return sent === null ? file : `${sent[1] ?? file}, sent over NATS`;
}
