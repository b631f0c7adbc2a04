import type { PackagePlan, PlanAction } from '../plan/plan.js';

const marks: Record<PlanAction, string> = {
  create: '+',
  update: '~',
  replace: '-/+',
  drifted: '!',
  unchanged: '=',
  prune: '-',
};

/** The plan as people read it: a line per command with its mark, action and reason. */
export function renderPlan(plans: readonly PackagePlan[]): string {
  const lines: string[] = [];
  for (const plan of plans) {
    lines.push(`${plan.name} (${plan.file})`);
    const width = Math.max(0, ...plan.items.map((i) => i.id.length));
    for (const item of plan.items) {
      lines.push(
        `  ${marks[item.action].padStart(3)} ${item.id.padEnd(width)}  ${item.action.padEnd(9)}  ${item.reason}`,
      );
      if (item.action !== 'replace') continue;
      const more = item.dependents ?? [];
      if (more.length > 0) lines.push(`      ${' '.repeat(width)}  then: ${more.join(', ')}`);
      if (item.losesData === true && item.command?.replace !== 'allow')
        lines.push(`      ${' '.repeat(width)}  deletes what it holds: needs --allow-replace`);
    }
    lines.push('');
  }
  lines.push(planSummary(plans));
  return lines.join('\n');
}

/** Counts by action: `Plan: 1 to create, 1 to update, 2 unchanged.` */
export function planSummary(plans: readonly PackagePlan[]): string {
  const counts = new Map<PlanAction, number>();
  for (const item of plans.flatMap((p) => p.items))
    counts.set(item.action, (counts.get(item.action) ?? 0) + 1);
  const n = (a: PlanAction): number => counts.get(a) ?? 0;
  if (n('create') + n('update') + n('replace') + n('drifted') + n('prune') === 0) {
    return `No changes: ${String(n('unchanged'))} command${n('unchanged') === 1 ? '' : 's'} up to date.`;
  }
  const parts = [
    n('create') > 0 ? `${String(n('create'))} to create` : '',
    n('update') > 0 ? `${String(n('update'))} to update` : '',
    n('replace') > 0 ? `${String(n('replace'))} to replace` : '',
    n('drifted') > 0 ? `${String(n('drifted'))} drifted (to repair)` : '',
    n('prune') > 0 ? `${String(n('prune'))} to prune (with --prune)` : '',
    n('unchanged') > 0 ? `${String(n('unchanged'))} unchanged` : '',
  ].filter(Boolean);
  return `Plan: ${parts.join(', ')}.`;
}

/** Whether a plan has anything for apply to do. */
export function hasChanges(plans: readonly PackagePlan[]): boolean {
  return plans.some((p) => p.items.some((i) => i.action !== 'unchanged'));
}
