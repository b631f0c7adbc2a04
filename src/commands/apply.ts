import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { SpinError } from '../core/errors.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import {
  interruptSignal,
  lockTimeoutMs,
  outputFlags,
  outputMode,
  resolveHome,
  selectionFlags,
  stateFlags,
} from '../cli/reconcile-flags.js';
import { createRenderer } from '../cli/reconcile-renderer.js';
import { durationFlagMs, natsFlags, natsOptionsOf, refuseLocalFlags } from '../cli/nats-flags.js';
import { SpinCommand } from '../cli/spin-command.js';
import { apply, applySaved } from '../reconcile/apply.js';
import { isSavedPlan, readPlan } from '../plan/plan-document.js';

export default class Apply extends SpinCommand {
  static override summary = 'Make the machine match the packages, or carry out a saved plan.';
  static override description =
    'Plans the packages against the state file and the machine, runs what is missing, changed or drifted through the broker (the daemon when one runs, otherwise an embedded one), and records each result. Running it again with the same files does nothing. Given a plan saved by `spin plan --out FILE`, runs exactly that plan, and refuses it (exit 3) when the state or a package file changed since. Exit 0 when everything succeeded, 1 when a command failed, 2 for invalid input, 3 when the state is locked or corrupt or the plan cannot be carried out as it stands.';
  static override examples = [
    '<%= config.bin %> apply examples/vm.spin.yaml',
    '<%= config.bin %> apply packages/ --prune',
    '<%= config.bin %> apply plan.json',
    '<%= config.bin %> apply vm.spin.yaml --target start --output json',
    '<%= config.bin %> apply vm.spin.yaml --lock-timeout 5m',
    '<%= config.bin %> apply fleet.spin.yaml --nats nats://control:4222 --nats-user operator   # run on the coordinator',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({
      description: 'package files or directories, or one saved plan',
      required: true,
    }),
  };
  static override flags = {
    ...selectionFlags,
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
    const { argv, flags, raw } = await this.parse(Apply);
    const paths = argv.map(String);
    const saved = paths.length === 1 && (await isSavedPlan(paths[0] ?? ''));
    if (saved) refusePlanningFlags(flags);
    const nats = natsOptionsOf(flags);
    if (saved && nats !== undefined) {
      throw new SpinError('usage', 'a saved plan is applied where it was made, not with --nats');
    }
    if (nats !== undefined) refuseLocalFlags(raw);
    const loaded = saved ? undefined : await loadOrThrow(paths, flags['max-bytes']);
    const packages = loaded?.packages ?? [];
    const plan = saved ? await readPlan(paths[0] ?? '') : undefined;
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
      const common = {
        ...resolveHome(flags),
        allowShell: flags['allow-shell'],
        allowReplace: flags['allow-replace'],
        admission: admissionPolicy(flags),
        lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
        ...(flags['node-wait'] === undefined
          ? {}
          : { nodeWaitMs: durationFlagMs('node-wait', flags['node-wait']) }),
        signal: interrupt.signal,
        emit: renderer.listener,
      };
      const summary =
        nats !== undefined
          ? await (
              await import('../reconcile/remote-apply.js')
            ).applyRemote({
              nats,
              files: loaded?.files ?? [],
              request: {
                targets: flags.target ?? [],
                excludes: flags.exclude ?? [],
                prune: flags.prune,
                allowShell: flags['allow-shell'],
                allowReplace: flags['allow-replace'],
                ...(common.nodeWaitMs === undefined ? {} : { nodeWaitMs: common.nodeWaitMs }),
                lockTimeoutMs: common.lockTimeoutMs,
              },
              emit: renderer.listener,
              signal: interrupt.signal,
            })
          : plan === undefined
            ? await apply({
                ...common,
                packages,
                targets: flags.target ?? [],
                excludes: flags.exclude ?? [],
                prune: flags.prune,
              })
            : await applySaved({ ...common, plan, planPath: paths[0] ?? '' });
      await renderer.finish();
      if (summary.failed > 0 || summary.interrupted) await this.exitWith(ExitCode.commandFailed);
    } finally {
      interrupt.dispose();
    }
  }
}

/** A saved plan carries its own planning options: giving others is a usage error. */
function refusePlanningFlags(flags: {
  target?: string[] | undefined;
  exclude?: string[] | undefined;
  prune: boolean;
}): void {
  const given = [
    flags.target === undefined ? '' : '--target',
    flags.exclude === undefined ? '' : '--exclude',
    flags.prune ? '--prune' : '',
  ].filter(Boolean);
  if (given.length === 0) return;
  throw new SpinError(
    'usage',
    `${given.join(', ')} cannot be given with a saved plan: it carries the options it was made with`,
    { suggestions: ['Make a new plan with them: spin plan <paths> --out FILE ' + given.join(' ')] },
  );
}
