import type { CommandInput, FinishedCommand } from '../broker/broker-types.js';
import { outputOf, type CommandOutcome, type PackageMeta } from './run-packages.js';
import { specHash } from '../plan/spec-hash.js';
import type { StateData } from '../core/state-types.js';
import type { StateChange } from './state-journal.js';

/**
 * The id of the command that undoes `id` before it is replaced. A colon cannot occur in a
 * package's command ids, so these never meet one.
 */
export const undoIdOf = (id: string): string => `undo:${id}`;

/** Whether a command id is that of an undo before a replace (see `undoIdOf`). */
export const isUndoId = (id: string): boolean => id.startsWith('undo:');

/**
 * The change one command's outcome makes to the state. An applied command gets its record (what
 * it is, how it ended, its output tail); a command undone by prune or destroy loses its record
 * when the undo succeeded (and its package goes with its last record). An undo that did not
 * succeed changes nothing: the record of what is still there stays.
 */
export function outcomeChange(
  state: StateData,
  outcome: CommandOutcome,
  spec: CommandInput & { fileNeeds?: string[] },
  phase: 'apply' | 'prune' | 'destroy',
  file: string,
): StateChange | undefined {
  if (phase !== 'apply') {
    return outcome.state === 'succeeded'
      ? { op: 'forget', package: outcome.package, id: outcome.id }
      : undefined;
  }
  // The undo before a replace changes no record: until the command runs anew, the record says
  // what it made, so a replace that stops half-way is planned again.
  if (isUndoId(outcome.id)) return undefined;
  // A command that never ran (skipped, or cancelled before it started) left what an earlier run
  // made as it was: its record stays, and the next plan still shows the change.
  const neverRan =
    outcome.state === 'skipped' || (outcome.state === 'cancelled' && outcome.attempts === 0);
  if (neverRan && state.packages[outcome.package]?.commands[outcome.id]?.status === 'succeeded')
    return undefined;
  const finishedAt = new Date(outcome.finishedAt).toISOString();
  return {
    op: 'record',
    package: outcome.package,
    file,
    appliedAt: finishedAt,
    id: outcome.id,
    record: {
      resource: spec.resource,
      action: spec.action,
      node: spec.node,
      params: spec.params,
      needs: spec.fileNeeds ?? spec.needs,
      specHash: specHash(spec),
      status: outcome.state,
      attempts: outcome.attempts,
      output: outcome.output,
      ...(outcome.error === undefined ? {} : { error: outcome.error }),
      ...(outcome.reason === undefined ? {} : { reason: outcome.reason }),
      ...(outcome.observed === undefined ? {} : { observed: outcome.observed }),
      serial: state.serial,
      ...(outcome.startedAt === undefined
        ? {}
        : { startedAt: new Date(outcome.startedAt).toISOString() }),
      finishedAt,
    },
  };
}

/**
 * The changes that record in the state what a package of another process finished (a spin that
 * died, or that left its run to the daemon), as that process would have. A record the state
 * already has from later is kept.
 */
export function finishedChanges(
  state: StateData,
  name: string,
  meta: PackageMeta,
  finished: readonly FinishedCommand[],
): StateChange[] {
  const changes: StateChange[] = [];
  for (const done of finished) {
    const kept = state.packages[name]?.commands[done.spec.id];
    if (kept !== undefined && Date.parse(kept.finishedAt) >= done.finishedAt) continue;
    const output = outputOf(done.output);
    const outcome: CommandOutcome = {
      package: name,
      id: done.spec.id,
      state: done.state,
      attempts: done.attempt,
      finishedAt: done.finishedAt,
      output: output?.text ?? '',
      ...(output?.observed === undefined ? {} : { observed: output.observed }),
      ...(done.error === undefined ? {} : { error: done.error }),
      ...(done.reason === undefined ? {} : { reason: done.reason }),
    };
    const spec = { ...done.spec, fileNeeds: meta.fileNeeds[done.spec.id] ?? done.spec.needs };
    const change = outcomeChange(state, outcome, spec, meta.phase, meta.file);
    if (change !== undefined) changes.push(change);
  }
  return changes;
}
