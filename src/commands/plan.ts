import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { SpinError } from '../core/errors.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import {
  documentOutput,
  documentOutputFlags,
  resolveHome,
  selectionFlags,
  stateFlags,
} from '../cli/reconcile-flags.js';
import { printPlan } from '../cli/render-plan.js';
import { SpinCommand } from '../cli/spin-command.js';
import { natsFlags, natsOptionsOf, refuseLocalFlags } from '../cli/nats-flags.js';
import { refuseProblems } from '../plan/preflight.js';
import { savePlan } from '../plan/plan-document.js';
import { planPackages } from '../reconcile/plan-packages.js';

export default class Plan extends SpinCommand {
  static override summary = 'Show what apply would do, without doing it.';
  static override description =
    'Compares the packages with the state file and, through each agent, with the machine: every command is create, update, replace, drifted, unchanged or prune, with the reason. Takes no lock: it works while an apply or a watch runs, and says so. Warns when the VMs to start do not fit what their node has free: this node as measured now (counted with the same --cpu-overcommit, --memory-overcommit and --reserve-memory as apply), another node of a fleet as its last heartbeat reported it, under the flags of its own agent (asked of the coordinator: with --nats, or the daemon of $SPIN_HOME); and exits 2 naming what the commands to run need but this machine lacks (qemu not on PATH, a kernel file missing). With --out FILE the plan is saved, and `spin apply FILE` carries out exactly it. With --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 error.';
  static override examples = [
    '<%= config.bin %> plan examples/vm.spin.yaml',
    '<%= config.bin %> plan packages/ --out plan.json',
    '<%= config.bin %> plan packages/ --detailed-exitcode',
    '<%= config.bin %> plan vm.spin.yaml --output markdown',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'package files or directories', required: true }),
  };
  static override flags = {
    out: Flags.string({
      description: 'save the plan to this file (mode 0600), for `spin apply FILE`',
    }),
    'detailed-exitcode': Flags.boolean({
      description: 'exit 0 when nothing would change, 2 when something would, 1 on error',
    }),
    ...selectionFlags,
    ...admissionFlags,
    ...documentOutputFlags(['text', 'json', 'markdown']),
    ...stateFlags,
    ...packageFlags,
    ...natsFlags,
  };

  async run(): Promise<void> {
    const { argv, flags, raw } = await this.parse(Plan);
    const output = documentOutput(flags) as 'text' | 'json' | 'markdown';
    try {
      const loaded = await loadOrThrow(argv.map(String), flags['max-bytes']);
      const selection = {
        targets: flags.target ?? [],
        excludes: flags.exclude ?? [],
        prune: flags.prune,
      };
      const nats = natsOptionsOf(flags);
      if (nats !== undefined) refuseLocalFlags(raw);
      if (nats !== undefined && flags.out !== undefined) {
        throw new SpinError(
          'usage',
          'a plan is saved where it is applied: --out goes without --nats',
        );
      }
      const { doc, checked } =
        nats === undefined
          ? await planPackages({
              ...resolveHome(flags),
              packages: loaded.packages,
              ...selection,
              admission: admissionPolicy(flags),
            })
          : await (
              await import('../reconcile/remote-apply.js')
            ).planRemote(nats, loaded.files, selection);
      // What this machine lacks is refused before a plan is printed as JSON or saved.
      if (output === 'json' || flags.out !== undefined) await refuseProblems(checked);
      if (flags.out !== undefined) await savePlan(flags.out, doc);
      printPlan(doc, output, {
        out: (line) => {
          this.log(line);
        },
        err: (line) => {
          this.logToStderr(line);
        },
      });
      await refuseProblems(checked);
      if (flags.out !== undefined && output !== 'json') {
        this.log(
          `\nSaved the plan to ${flags.out}. To carry out exactly this plan: spin apply ${flags.out}`,
        );
      }
      if (flags['detailed-exitcode'] && doc.changes) await this.exitWith(2);
    } catch (error) {
      // With --detailed-exitcode, 2 means "changes"; every error is 1, as in Terraform.
      if (flags['detailed-exitcode'] && error instanceof SpinError) {
        this.reportError(error);
        await this.exitWith(ExitCode.commandFailed);
      }
      throw error;
    }
  }
}
