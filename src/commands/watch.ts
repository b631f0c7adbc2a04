import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { durationToMs } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import { ExitCode } from '../core/exit-codes.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { packageFlags } from '../cli/flags.js';
import { durationFlagMs, natsFlags, natsOptionsOf, refuseLocalFlags } from '../cli/nats-flags.js';
import {
  interruptSignal,
  lockTimeoutMs,
  outputFlags,
  outputMode,
  resolveHome,
  stateFlags,
} from '../cli/reconcile-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { createWatchRenderer } from '../cli/watch-renderer.js';
import { watchPackages } from '../watch/watch-packages.js';

export default class Watch extends SpinCommand {
  static override summary = 'Keep a directory of packages applied.';
  static override description =
    "Applies every *.spin.yaml below the directory, then re-applies a package whenever its file is saved (once the file has settled), and every package at each --interval to repair drift. An invalid file is reported until fixed, and its package keeps its last good content. A removed file leaves its package as it is, or with --prune destroys it. Ctrl-C or SIGTERM stops cleanly and exits 0 (being stopped is how a watch ends). With --once, reconciles everything once and exits with the codes of spin apply: 0 ok, 1 a command failed, 2 invalid input (nothing runs), 3 the state is locked or corrupt, 4 the coordinator or NATS could not be reached. With --nats, the directory is watched here and each apply and destroy runs on the fleet's coordinator, against its state, as `spin apply --nats` does; nothing is kept on this machine, and a coordinator that cannot be reached is reported and tried again at the package's next save or resync.";
  static override examples = [
    '<%= config.bin %> watch packages/',
    '<%= config.bin %> watch packages/ --prune --interval 1m',
    '<%= config.bin %> watch packages/ --once --output json',
    '<%= config.bin %> watch packages/ --nats nats://control:4222 --nats-user operator   # applied by the coordinator',
  ];
  static override args = {
    dir: Args.string({ description: 'directory of *.spin.yaml files', required: true }),
  };
  static override flags = {
    interval: Flags.string({
      description: 'plan every package against the machine and repair drift this often',
      default: '5m',
    }),
    settle: Flags.string({
      description: 'read a file once it has not changed for this long',
      default: '200ms',
    }),
    prune: Flags.boolean({
      description: 'destroy the package of a removed file, and undo commands removed from a file',
    }),
    once: Flags.boolean({ description: 'reconcile everything once and exit' }),
    'allow-replace': Flags.boolean({
      description:
        'let a change that cannot be made in place replace what holds data (an image, a volume with files)',
    }),
    'allow-shell': Flags.boolean({
      description: 'let shell commands run (embedded broker only; the daemon decides for itself)',
    }),
    'node-wait': Flags.string({
      description:
        'how long a command may wait for its node to have an agent (e.g. 2m); past it, it fails with node_unavailable and what needs it is skipped',
    }),
    ...admissionFlags,
    ...stateFlags,
    ...outputFlags,
    ...packageFlags,
    ...natsFlags,
  };

  async run(): Promise<void> {
    const { args, flags, raw } = await this.parse(Watch);
    const nats = natsOptionsOf(flags);
    if (nats !== undefined) refuseLocalFlags(raw);
    const renderer = createWatchRenderer(outputMode(flags.output), {
      out: (l) => {
        this.log(l);
      },
      err: (l) => {
        this.logToStderr(l);
      },
      write: (text) => process.stdout.write(text),
    });
    const interrupt = interruptSignal();
    try {
      const outcome = await watchPackages({
        ...(nats === undefined
          ? { ...resolveHome(flags), admission: admissionPolicy(flags) }
          : { nats }),
        lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
        dir: args.dir,
        intervalMs: duration('--interval', flags.interval, 1),
        settleMs: duration('--settle', flags.settle, 0),
        prune: flags.prune,
        once: flags.once,
        allowShell: flags['allow-shell'],
        allowReplace: flags['allow-replace'],
        ...(flags['node-wait'] === undefined
          ? {}
          : { nodeWaitMs: durationFlagMs('node-wait', flags['node-wait']) }),
        maxBytes: flags['max-bytes'],
        signal: interrupt.signal,
        emit: renderer.listener,
      });
      renderer.finish();
      if (flags.once && outcome.exitCode !== ExitCode.ok) await this.exitWith(outcome.exitCode);
    } finally {
      interrupt.dispose();
    }
  }
}

function duration(flag: string, value: string, min: number): number {
  const ms = durationToMs(value);
  if (ms === undefined || ms < min) {
    throw new SpinError('usage', `${flag}: '${value}' is not a duration like 200ms, 30s or 5m`);
  }
  return ms;
}
