import type { AdmissionPolicy, ReportedBudgets } from '../core/vm-budget.js';
import type { PackageSpec } from '../core/package.js';
import { preflight } from '../plan/preflight.js';
import type { PreflightReport } from '../plan/preflight.js';
import { planDocument } from '../plan/plan-document.js';
import type { PlanDocument } from '../plan/plan-document.js';
import { selectCommands } from '../plan/selection.js';
import { plan } from './apply.js';
import { daemonBudgets } from './reported-budgets.js';

/**
 * What `spin plan` computes, here or on a fleet's coordinator: the plan of the packages against
 * the state and the machine, with the selection checked (a name that matches no command is
 * refused now, not when the plan is applied) and the preflight of what would run. The caller
 * prints the document and refuses the preflight's problems (`refuseProblems`).
 */
export async function planPackages(options: {
  home: string;
  statePath: string;
  packages: PackageSpec[];
  targets: string[];
  excludes: string[];
  prune: boolean;
  admission: AdmissionPolicy;
  /** What the coordinator knows of other nodes (see SessionOptions); its daemon's by default. */
  reported?: ReportedBudgets;
}): Promise<{ doc: PlanDocument; checked: PreflightReport }> {
  const { home, statePath, packages } = options;
  const result = await plan({ home, statePath, packages });
  const selection = { targets: options.targets, excludes: options.excludes, prune: options.prune };
  const runs = selectCommands(result.plans, selection.targets, selection.excludes);
  const checked = await preflight({
    home,
    plans: result.plans,
    runs,
    admission: options.admission,
    reported: options.reported ?? daemonBudgets(home),
  });
  const doc = planDocument(result.plans, packages, {
    statePath,
    state: result.state,
    changing: result.changing,
    options: selection,
    warnings: checked.warnings,
  });
  return { doc, checked };
}
