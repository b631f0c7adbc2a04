import { findAction } from '../agents/registry.js';
import PQueue from 'p-queue';
import type { AgentAction, Observation, Observer } from '../agents/agent.js';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import { changedFields, specHash } from './spec-hash.js';
import type { CommandRecord, StateData } from '../core/state-types.js';

/**
 * What apply will do with a command.
 * - create: not in the state, or its last run did not succeed;
 * - update: it ran, but the file changed what it does, and its action can make that change in place;
 * - replace: it made something, and the change cannot be made in place (ActionSpec.changesInPlace):
 *   what it made is undone through its inverse, then it runs anew; or it restarts because
 *   something it needs is replaced;
 * - drifted: it ran and is unchanged, but `observe` finds its result gone;
 * - unchanged: nothing to do;
 * - prune: it left the file but is still in the state (undone only with `--prune`).
 */
export type PlanAction = 'create' | 'update' | 'replace' | 'drifted' | 'unchanged' | 'prune';

/** One command's line of the plan. */
export interface PlanItem {
  id: string;
  action: PlanAction;
  reason: string;
  /** The command as the file has it (absent for prune). */
  command?: CommandSpec;
  /** The command as the state has it (absent for create of a new command). */
  record?: CommandRecord;
  /** For replace: the commands that need this one, directly or not, and run again with it. */
  dependents?: string[];
  /** For replace: undoing what the command made loses data (an image, a volume with entries). */
  losesData?: boolean;
  /**
   * For create: what the command would make exists already, and no package manages it (a volume
   * made by hand, or by a state that was lost). Apply refuses to take it over silently: it must
   * be imported (`spin import`), or moved aside.
   */
  unmanaged?: Record<string, unknown>;
}

/** A package's plan: its commands in file order, then the ones to prune. */
export interface PackagePlan {
  name: string;
  file: string;
  items: PlanItem[];
}

/** The actions that make apply run a command. */
export const runsCommand: ReadonlySet<PlanAction> = new Set([
  'create',
  'update',
  'replace',
  'drifted',
]);

/**
 * Compares the packages in the files with the state and, through `observe`, with the machine.
 * Observes only what the state says succeeded and the file did not change: everything else runs
 * anyway. Observations run a few at a time.
 */
export async function computePlan(
  packages: readonly PackageSpec[],
  state: StateData,
  observe: Observer,
): Promise<PackagePlan[]> {
  const plans: PackagePlan[] = [];
  const toObserve: { item: PlanItem; command: CommandSpec }[] = [];
  const toWeigh: { item: PlanItem; record: CommandRecord }[] = [];
  const toFind: { item: PlanItem; command: CommandSpec }[] = [];
  for (const pkg of packages) {
    const records = state.packages[pkg.name]?.commands ?? {};
    const items: PlanItem[] = pkg.commands.map((command) => {
      const record = Object.hasOwn(records, command.id) ? records[command.id] : undefined;
      return diffCommand(command, record);
    });
    const inFile = new Set(pkg.commands.map((c) => c.id));
    for (const [id, record] of Object.entries(records)) {
      if (!inFile.has(id) && record.status === 'succeeded') {
        items.push({ id, action: 'prune', reason: 'no longer in the file', record });
      }
    }
    carryReplaces(items);
    rerunAfterNeeds(items);
    for (const item of items) {
      if (item.action === 'unchanged' && item.command)
        toObserve.push({ item, command: item.command });
      if (item.action === 'replace' && item.record) toWeigh.push({ item, record: item.record });
      if (
        item.action === 'create' &&
        item.record === undefined &&
        item.command &&
        claims(item.command)
      )
        toFind.push({ item, command: item.command });
    }
    plans.push({ name: pkg.name, file: pkg.file, items });
  }
  const observing = new PQueue({ concurrency: 8 });
  await observing.addAll([
    ...toObserve.map(({ item, command }) => async () => {
      let seen: Observation | undefined;
      try {
        seen = await observe(command);
      } catch (error) {
        // What cannot be looked at is not called drift; the plan says so and moves on.
        item.reason = `up to date (could not observe: ${error instanceof Error ? error.message : String(error)})`;
        return;
      }
      if (seen !== undefined && !seen.present) {
        item.action = 'drifted';
        item.reason = describeObservation(seen);
      }
    }),
    ...toWeigh.map(({ item, record }) => async () => {
      item.losesData = await losesData(record, observe);
    }),
    ...toFind.map(({ item, command }) => async () => {
      // What cannot be observed is left to the command, which says what it finds.
      const seen = await observe(command).catch(() => undefined);
      if (seen?.present !== true) return;
      item.unmanaged = seen.details;
      item.reason =
        'exists already, and no package manages it: import it (spin import) or move it aside';
    }),
  ]);
  return plans;
}

/**
 * Whether undoing `record` would lose data: its action holds data (ActionSpec.holdsData) and
 * what it made is still there. What cannot be observed is taken to hold data.
 */
async function losesData(record: CommandRecord, observe: Observer): Promise<boolean> {
  const holdsData = findAction(record.resource, record.action)?.holdsData;
  if (holdsData === undefined) return false;
  try {
    const seen = await observe(record);
    return seen === undefined || (seen.present && holdsData(seen.details));
  } catch {
    return true;
  }
}

/**
 * Carries each replace to the commands that need it, directly or not: a command whose action
 * runs again after its needs (a started VM) is replaced too, since what it runs on is made anew
 * (a VM is restarted on its new disk); any other that was unchanged runs again. The replaced
 * command lists them as its dependents.
 */
function carryReplaces(items: PlanItem[]): void {
  const byId = new Map(items.map((i) => [i.id, i]));
  const dependents = new Map<string, string[]>();
  for (const item of items) {
    for (const need of item.command?.needs ?? [])
      dependents.set(need, [...(dependents.get(need) ?? []), item.id]);
  }
  const replaced = items.filter((i) => i.action === 'replace');
  for (let item = replaced.shift(); item !== undefined; item = replaced.shift()) {
    const seen = new Set<string>();
    const stack = [...(dependents.get(item.id) ?? [])];
    for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
      if (seen.has(id)) continue;
      seen.add(id);
      stack.push(...(dependents.get(id) ?? []));
      const dependent = byId.get(id);
      const command = dependent?.command;
      if (dependent === undefined || command === undefined) continue;
      const restarts = findAction(command.resource, command.action)?.rerunsAfterNeeds;
      if (restarts !== undefined && dependent.record?.status === 'succeeded') {
        if (dependent.action === 'replace') continue;
        dependent.action = 'replace';
        dependent.reason = `restart: needs ${item.id}, which is replaced`;
        replaced.push(dependent);
      } else if (dependent.action === 'unchanged') {
        dependent.action = 'update';
        dependent.reason = `needs ${item.id}, which is replaced`;
      }
    }
    item.dependents = [...seen];
  }
}

/**
 * Marks for a run the unchanged commands whose action runs again after a command it needs runs
 * (ActionSpec.rerunsAfterNeeds: a started VM whose config is rewritten is restarted), until no
 * more change: a change is carried down a chain whatever the order of the file. Those marked
 * are not observed.
 */
function rerunAfterNeeds(items: PlanItem[]): void {
  const runs = new Set(items.filter((i) => runsCommand.has(i.action)).map((i) => i.id));
  for (let changed = true; changed;) {
    changed = false;
    for (const item of items) {
      const command = item.command;
      if (item.action !== 'unchanged' || command === undefined) continue;
      const reason = findAction(command.resource, command.action)?.rerunsAfterNeeds;
      if (reason === undefined || !command.needs.some((need) => runs.has(need))) continue;
      item.action = 'update';
      item.reason = reason;
      runs.add(item.id);
      changed = true;
    }
  }
}

function diffCommand(command: CommandSpec, record: CommandRecord | undefined): PlanItem {
  if (record === undefined)
    return { id: command.id, action: 'create', reason: 'new command', command };
  const base = { id: command.id, command, record };
  if (record.resource !== command.resource || record.action !== command.action) {
    const reason = `action changed from ${record.resource}.${record.action}`;
    return replaces(record)
      ? { ...base, action: 'replace', reason: `${reason}: what it made is undone first` }
      : { ...base, action: 'update', reason };
  }
  if (record.specHash !== specHash(command)) {
    const fields = changedFields(record.params, command.params);
    if (record.node !== command.node) fields.unshift('node');
    const forcing = replaces(record) ? replaceForcedBy(record, command, fields) : [];
    if (forcing.length > 0)
      return {
        ...base,
        action: 'replace',
        reason: `${forcing.join(' and ')}: cannot change in place`,
      };
    return { ...base, action: 'update', reason: `changed: ${fields.join(', ') || 'params'}` };
  }
  if (record.status !== 'succeeded') {
    return { ...base, action: 'create', reason: `last run ${record.status}` };
  }
  return { ...base, action: 'unchanged', reason: 'up to date' };
}

/** Whether a command of this action holds something once it succeeded (ActionSpec.claims). */
function claims(command: CommandSpec): boolean {
  return findAction(command.resource, command.action)?.claims !== undefined;
}

/** Whether a change to `record` may need a replace: it made something its inverse undoes. */
function replaces(record: CommandRecord): boolean {
  return (
    record.status === 'succeeded' &&
    findAction(record.resource, record.action)?.inverse !== undefined
  );
}

/**
 * Of the changed `fields` of a command of the same action, what its action cannot do in place
 * (ActionSpec.changesInPlace and cannotChangeInPlace): `node changed`, `params.format changed`,
 * `params.image_size shrinks from 2 to 1 GiB`. Empty when all of it can.
 */
function replaceForcedBy(
  record: CommandRecord,
  command: CommandSpec,
  fields: readonly string[],
): string[] {
  const spec = findAction(record.resource, record.action);
  const inPlace = new Set(spec?.changesInPlace ?? []);
  const forcing = fields
    .filter((field) => field === 'node' || !inPlace.has(field.split('.')[1] ?? ''))
    .map((field) => `${field} changed`);
  const cannot = spec?.cannotChangeInPlace?.(record.params, command.params);
  if (cannot !== undefined) forcing.push(cannot);
  return forcing;
}

function describeObservation(seen: Observation): string {
  const parts = Object.entries(seen.details).map(
    ([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`,
  );
  return parts.length > 0 ? `observed missing: ${parts.join(', ')}` : 'observed missing';
}

/**
 * The inverse of a recorded command, for prune and destroy: the action that undoes it and its
 * params, as `action` (the recorded command's action, from the agent that carries it out) says
 * through its spec's `inverse` and its `inverseParams`; undefined when nothing needs undoing (a
 * stop, a delete) or no agent has the action.
 */
export function inverseOf(
  record: Pick<CommandRecord, 'params'>,
  action: Pick<AgentAction, 'spec' | 'inverseParams'> | undefined,
): { action: string; params: Record<string, unknown> } | undefined {
  const inverse = action?.spec.inverse;
  if (action === undefined || inverse === undefined) return undefined;
  return {
    action: inverse,
    params: action.inverseParams ? action.inverseParams(record.params) : record.params,
  };
}
