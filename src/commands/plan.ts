import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { ExitCode } from '../core/exit-codes.js';
import { SpinError } from '../core/errors.js';
import { packageFlags } from '../cli/flags.js';
import { loadOrThrow } from '../cli/load-or-report.js';
import { lockTimeoutMs, resolveHome, stateFlags } from '../cli/reconcile-flags.js';
import { hasChanges, renderPlan } from '../cli/render-plan.js';
import { lockWaitLine, recoveredLines } from '../cli/reconcile-lines.js';
import { SpinCommand } from '../cli/spin-command.js';
import { plan } from '../reconcile/apply.js';

export default class Plan extends SpinCommand {
  static override summary = 'Show what apply would do, without doing it.';
  static override description =
    'Compares the packages with the state file and, through each agent, with the machine: every command is create, update, replace, drifted, unchanged or prune, with the reason. With --detailed-exitcode: 0 nothing to do, 2 changes pending, 1 error.';
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
    ...stateFlags,
    ...packageFlags,
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Plan);
    try {
      const { packages } = await loadOrThrow(argv.map(String), flags['max-bytes']);
      const plans = await plan({
        ...resolveHome(flags),
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
      if (flags.json) {
        const out = plans.map((p) => ({
          package: p.name,
          file: p.file,
          commands: p.items.map((i) => ({
            id: i.id,
            action: i.action,
            reason: i.reason,
            ...(i.dependents === undefined ? {} : { dependents: i.dependents }),
            ...(i.losesData === true ? { loses_data: true } : {}),
            ...(i.unmanaged === undefined ? {} : { unmanaged: true }),
          })),
        }));
        this.log(JSON.stringify({ changes: hasChanges(plans), packages: out }, null, 2));
      } else {
        this.log(renderPlan(plans));
      }
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
