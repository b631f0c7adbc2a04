import type { PackagePlan, PlanAction } from '../plan/plan.js';
import { plansOf, type PlanDocument } from '../plan/plan-document.js';
import { displayText } from '../core/display-text.js';

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

/** Where printed lines go. */
export interface LineSink {
  out: (line: string) => void;
  err: (line: string) => void;
}

/**
 * Prints a plan document: as the terminal view (`text`), as the document itself (`json`), or
 * as a summary for a pull-request comment (`markdown`). A note that the state was being changed
 * while the plan read it goes to stderr with the text view, and into the document otherwise.
 */
export function printPlan(
  doc: PlanDocument,
  output: 'text' | 'json' | 'markdown',
  sink: LineSink,
): void {
  if (output === 'json') {
    sink.out(JSON.stringify(doc, null, 2));
    return;
  }
  if (output === 'markdown') {
    sink.out(renderPlanMarkdown(doc));
    return;
  }
  const changing = doc.state.changing;
  if (changing !== undefined) {
    sink.err(
      `note: the state was being changed while this plan read it (${changing.command}, pid ${String(changing.pid)} on ${changing.host}, since ${changing.since}): it may be out of date`,
    );
  }
  sink.out(renderPlan(plansOf(doc, null)));
  for (const warning of doc.warnings) sink.out(`warning: ${warning}`);
  const { targets, excludes, prune } = doc.options;
  const scope = [
    targets.length > 0 ? `targets: ${targets.join(', ')}` : '',
    excludes.length > 0 ? `excluded: ${excludes.join(', ')}` : '',
    prune ? 'prune: yes' : '',
  ].filter(Boolean);
  if (scope.length > 0) sink.out(`Apply runs only what these select: ${scope.join('; ')}.`);
}

/**
 * A plan as Markdown for a pull-request comment: the counts, then what needs a person's eye
 * (what would lose data or take over what exists, drift), then each package's changes. Unchanged
 * commands are only counted.
 */
export function renderPlanMarkdown(doc: PlanDocument): string {
  const plans = plansOf(doc, null);
  const lines = [
    `### spin plan: ${planSummary(plans)
      .replace(/^Plan: /, '')
      .replace(/\.$/, '')}`,
    '',
  ];
  const attention = doc.packages.flatMap((pkg) =>
    pkg.items.flatMap((item) => {
      const name = `\`${pkg.name}/${item.id}\``;
      if (item.loses_data === true)
        return [`- **${name} is replaced, which deletes what it holds**: ${cell(item.reason)}`];
      if (item.unmanaged === true)
        return [
          `- **${name} would take over what exists already**: import it first (\`spin import\`)`,
        ];
      if (item.action === 'drifted') return [`- ${name} drifted: ${cell(item.reason)}`];
      return [];
    }),
  );
  attention.push(...doc.warnings.map((w) => `- ${cell(w)}`));
  if (doc.state.changing !== undefined)
    attention.unshift(
      '- The state was being changed while this plan was made: it may be out of date.',
    );
  if (attention.length > 0) lines.push('**Needs attention**', '', ...attention, '');
  for (const pkg of doc.packages) {
    const changed = pkg.items.filter((i) => i.action !== 'unchanged');
    if (changed.length === 0) continue;
    lines.push(
      `#### ${pkg.name} (\`${cell(pkg.file)}\`)`,
      '',
      '| | command | change | why |',
      '| --- | --- | --- | --- |',
    );
    for (const item of changed) {
      lines.push(
        `| \`${marks[item.action]}\` | \`${cell(item.id)}\` | ${item.action} | ${cell(item.reason)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n').trimEnd();
}

/** Text made safe for a Markdown table cell: pipes escaped, one line. */
function cell(text: string): string {
  return displayText(text).replaceAll('|', '\\|').replaceAll('\n', ' ');
}
