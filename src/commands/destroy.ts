import * as Args from '@oclif/core/args';
import { existsSync } from 'node:fs';
import { ExitCode } from '../core/exit-codes.js';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import {
  interruptSignal,
  lockTimeoutMs,
  outputFlags,
  outputMode,
  resolveHome,
  stateFlags,
} from '../cli/reconcile-flags.js';
import { createRenderer } from '../cli/reconcile-renderer.js';
import { natsFlags, natsOptionsOf, refuseLocalFlags } from '../cli/nats-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { destroy } from '../reconcile/destroy.js';

export default class Destroy extends SpinCommand {
  static override summary = 'Undo everything a package made.';
  static override description =
    'Runs the inverse of every command the packages applied (stop before remove, images before volumes), in reverse dependency order, then removes the packages from the state file. Name packages by their files or by their names in the state.';
  static override examples = [
    '<%= config.bin %> destroy examples/vm.spin.yaml',
    '<%= config.bin %> destroy vm-demo',
    '<%= config.bin %> destroy vm-demo --nats nats://control:4222   # on the coordinator',
  ];
  static override strict = false;
  static override args = {
    targets: Args.string({
      description: 'package files, directories or package names',
      required: true,
    }),
  };
  static override flags = { ...stateFlags, ...outputFlags, ...packageFlags, ...natsFlags };

  async run(): Promise<void> {
    const { argv, flags, raw } = await this.parse(Destroy);
    const nats = natsOptionsOf(flags);
    if (nats !== undefined) refuseLocalFlags(raw);
    const targets = argv.map(String);
    const paths = targets.filter((t) => existsSync(t));
    const names = targets.filter((t) => !existsSync(t));
    if (paths.length > 0)
      names.push(...(await loadOrThrow(paths, flags['max-bytes'])).packages.map((p) => p.name));
    const renderer = await createRenderer(
      outputMode(flags.output),
      {
        out: (l) => {
          this.log(l);
        },
        err: (l) => {
          this.logToStderr(l);
        },
      },
      'Destroy',
    );
    const interrupt = interruptSignal();
    try {
      const summary =
        nats === undefined
          ? await destroy({
              ...resolveHome(flags),
              packages: names,
              lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
              signal: interrupt.signal,
              emit: renderer.listener,
            })
          : await (
              await import('../reconcile/remote-apply.js')
            ).destroyRemote({
              nats,
              packages: names,
              lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
              signal: interrupt.signal,
              emit: renderer.listener,
            });
      await renderer.finish();
      if (summary.failed > 0 || summary.interrupted) await this.exitWith(ExitCode.commandFailed);
    } finally {
      interrupt.dispose();
    }
  }
}
