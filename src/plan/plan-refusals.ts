import { SpinError } from '../core/errors.js';
import { commandPosition } from '../load/load-package-file.js';
import type { PackagePlan, PlanItem } from './plan.js';

/**
 * Plans apply will not carry out as they stand: each refusal names every command concerned with
 * its file and line, and what to do, before anything runs (SpinError `state_conflict`, exit 3).
 */

/** The selected items of `plans` that `refused` picks, with their packages. */
function pick(
  plans: readonly PackagePlan[],
  selected: ReadonlyMap<string, ReadonlySet<string>>,
  refused: (item: PlanItem) => boolean,
): { plan: PackagePlan; item: PlanItem }[] {
  return plans.flatMap((plan) =>
    plan.items
      .filter((item) => selected.get(plan.name)?.has(item.id) === true && refused(item))
      .map((item) => ({ plan, item })),
  );
}

/** `file:line:column` of a command, or the file alone when it cannot be read any more. */
export async function whereIs(file: string, id: string): Promise<string> {
  const at = await commandPosition(file, id);
  return at === undefined ? file : `${file}:${String(at.line)}:${String(at.column)}`;
}

/** One line per refused command: where it is, then what `describe` says of it. */
function describeAll(
  refused: readonly { plan: PackagePlan; item: PlanItem }[],
  describe: (plan: PackagePlan, item: PlanItem) => string,
): Promise<string[]> {
  return Promise.all(
    refused.map(
      async ({ plan, item }) => `${await whereIs(plan.file, item.id)}: ${describe(plan, item)}`,
    ),
  );
}

/**
 * Refuses a replace that would undo what holds data (an image, a volume with entries) unless
 * `--allow-replace` was given or the command says `replace: allow`.
 */
export async function refuseDataLoss(
  plans: readonly PackagePlan[],
  selected: ReadonlyMap<string, ReadonlySet<string>>,
  allowReplace: boolean,
): Promise<void> {
  if (allowReplace) return;
  const refused = pick(
    plans,
    selected,
    (i) => i.action === 'replace' && i.losesData === true && i.command?.replace !== 'allow',
  );
  if (refused.length === 0) return;
  const lines = await describeAll(
    refused,
    (plan, item) =>
      `${plan.name}/${item.id} would be replaced (${item.reason}), which deletes what it holds`,
  );
  throw new SpinError(
    'state_conflict',
    `${refused.length === 1 ? 'A replace' : `${String(refused.length)} replaces`} would lose data; nothing was run:\n  ${lines.join('\n  ')}`,
    {
      details: { commands: refused.map(({ plan, item }) => `${plan.name}/${item.id}`) },
      suggestions: [
        'Run the apply again with --allow-replace to replace them, or add `replace: allow` to the command.',
        'To keep the data, change the file back, or give the new resource another name.',
      ],
    },
  );
}

/**
 * Refuses to create what exists already and no package manages (PlanItem.unmanaged): taking it
 * over is explicit, through `spin import`, never silent.
 */
export async function refuseUnmanaged(
  plans: readonly PackagePlan[],
  selected: ReadonlyMap<string, ReadonlySet<string>>,
): Promise<void> {
  const refused = pick(plans, selected, (i) => i.unmanaged !== undefined);
  if (refused.length === 0) return;
  const lines = await describeAll(
    refused,
    (plan, item) =>
      `${plan.name}/${item.id} would take over what exists already and no package manages`,
  );
  const imports = [...new Set(refused.map(({ plan }) => plan.file))].map(
    (file) =>
      `spin import ${file} ${refused
        .filter(({ plan }) => plan.file === file)
        .map(({ plan, item }) => `${plan.name}/${item.id}`)
        .join(' ')}`,
  );
  throw new SpinError(
    'state_conflict',
    `${refused.length === 1 ? 'A command finds what it would make' : `${String(refused.length)} commands find what they would make`} already there; nothing was run:\n  ${lines.join('\n  ')}`,
    {
      details: { commands: refused.map(({ plan, item }) => `${plan.name}/${item.id}`) },
      suggestions: [
        `To manage it as it is, import it first: ${imports.join('; ')}`,
        'Otherwise move it aside, or give the command another name.',
      ],
    },
  );
}
