import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { SpinError } from '../core/errors.js';
import { admissionFlags, admissionPolicy } from '../cli/admission-flags.js';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import { lockTimeoutMs, resolveHome, stateFlags } from '../cli/reconcile-flags.js';
import { hasChanges, renderPlan } from '../cli/render-plan.js';
import { lockWaitLine, recoveredLines } from '../cli/reconcile-lines.js';
import { SpinCommand } from '../cli/spin-command.js';
import { preflight, refuseProblems } from '../plan/preflight.js';
import { selectCommands } from '../plan/selection.js';
import { plan } from '../reconcile/apply.js';

export default class Plan extends SpinCommand {
  static override summary = 'Show what apply would do, without doing it.';
  static override description =
    'Compares the packages with the state file and, through each agent, with the machine: every command is create, update, drifted, unchanged or prune, with the reason. Warns when the VMs to start do not fit what the node has free (counted with the same --cpu-overcommit, --memory-overcommit and --reserve-memory as apply), and exits 2 naming what the commands to run need but this machine lacks (qemu not on PATH, a kernel file missing). With --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 error.';
  static override examples = [
    '<%= config.bin %> plan examples/vm.spin.yaml',
    '<%= config.bin %> plan packages/ --detailed-exitcode',
    '<%= config.bin %> plan vm.spin.yaml --json',
  ];
  static override strict = false;
  static override args = {
    paths: Args.string({ description: 'package files or directories', required: true }),
  };
  static override flags = {
    json: Flags.boolean({ description: 'print the plan as JSON' }),
    'detailed-exitcode': Flags.boolean({
      description: 'exit 0 when nothing would change, 2 when something would, 1 on error',
    }),
    ...admissionFlags,
    ...stateFlags,
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Plan);
    try {
      const { packages } = await loadOrThrow(argv.map(String), flags['max-bytes']);
      const { home, statePath } = resolveHome(flags);
      const plans = await plan({
        home,
        statePath,
        packages,
        lockTimeoutMs: lockTimeoutMs(flags['lock-timeout']),
        emit: (event) => {
          if (event.type === 'lock-wait') this.logToStderr(lockWaitLine(event.holder));
          if (event.type === 'recovered') {
            for (const line of recoveredLines(event.cancelled, event.recorded)) {
              this.logToStderr(line);
            }
          }
        },
      });
      const runs = selectCommands(plans, [], []);
      const checked = await preflight({ home, plans, runs, admission: admissionPolicy(flags) });
      if (flags.json) {
        const out = plans.map((p) => ({
          package: p.name,
          file: p.file,
          commands: p.items.map((i) => ({ id: i.id, action: i.action, reason: i.reason })),
        }));
        const { warnings, problems } = checked;
        this.log(
          JSON.stringify(
            { changes: hasChanges(plans), packages: out, warnings, problems },
            null,
            2,
          ),
        );
      } else {
        this.log(renderPlan(plans));
        for (const warning of checked.warnings) this.log(`warning: ${warning}`);
      }
      await refuseProblems(checked);
      if (flags['detailed-exitcode'] && hasChanges(plans)) await this.exitWith(2);
    } catch (error) {
      // With --detailed-exitcode, 2 means "changes"; every error is 1, as in Terraform.
      if (flags['detailed-exitcode'] && error instanceof SpinError) {
        this.logToStderr(error.message);
        await this.exitWith(ExitCode.commandFailed);
      }
      throw error;
    }
  }
}
