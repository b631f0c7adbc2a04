import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
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
import { SpinCommand } from '../cli/spin-command.js';
import { apply } from '../reconcile/apply.js';

export default class Apply extends SpinCommand {
  static override summary = 'Make the machine match the packages.';
  static override description =
    'Plans the packages against the state file and the machine, runs what is missing, changed or drifted through the broker (the daemon when one runs, otherwise an embedded one), and records each result. Running it again with the same files does nothing. Exit 0 when everything succeeded, 1 when a command failed, 2 for invalid input, 3 when the state is locked or corrupt.';
  static override examples = [
    '<%= config.bin %> apply examples/vm.spin.yaml',
    '<%= config.bin %> apply packages/ --prune',
    '<%= config.bin %> apply vm.spin.yaml --target start --output json',
    '<%= config.bin %> apply vm.spin.yaml --lock-timeout 5m',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'package files or directories', required: true }),
  };
  static override flags = {
    target: Flags.string({
      description: 'run only this command (<id> or <package>/<id>) and what it needs; repeatable',
      multiple: true,
    }),
    exclude: Flags.string({
      description: 'do not run this command, nor what needs it; repeatable',
      multiple: true,
    }),
    prune: Flags.boolean({
      description: 'undo commands that were removed from the files, in reverse dependency order',
    }),
    'allow-shell': Flags.boolean({
      description: 'let shell commands run (embedded broker only; the daemon decides for itself)',
    }),
    ...admissionFlags,
    ...stateFlags,
    ...outputFlags,
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Apply);
    const { packages } = await loadOrThrow(argv.map(String), flags['max-bytes']);
    const renderer = await createRenderer(outputMode(flags.output), {
      out: (l) => {
        this.log(l);
      },
      err: (l) => {
        this.logToStderr(l);
      },
    });
    const interrupt = interruptSignal();
    try {
      const summary = await apply({
        ...resolveHome(flags),
        packages,
        targets: flags.target ?? [],
        excludes: flags.exclude ?? [],
        prune: flags.prune,
        allowShell: flags['allow-shell'],
        admission: admissionPolicy(flags),
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
