import { defaults } from '../core/defaults.js';
import type { AgentHost } from '../executor/agent-host.js';
import { inverseOf } from '../plan/plan.js';
import type { RunRequest } from './run-packages.js';
import type { CommandRecord, StateData } from '../core/state-types.js';
import { heldElsewhere, holdersIn } from '../plan/ownership.js';

/**
 * The commands that undo `records` (prune, destroy): each record's inverse action, ordered so
 * that a command is undone before the commands it needed (a VM stopped before its disk is
 * deleted, the disk before its volume). Records whose action has no inverse are left out, and
 * the order passes through them: if A needs B needs C and B leaves nothing to undo, A is still
 * undone before C. A record of something another package of `state` holds too is not undone
 * (see `heldElsewhere`): it counts among those with nothing to undo. With `only`, just those
 * records are undone; the others only order them.
 */
export function inverseRequest(
  name: string,
  file: string,
  phase: RunRequest['phase'],
  records: readonly [string, CommandRecord][],
  host: AgentHost,
  state: StateData,
  only?: ReadonlySet<string>,
): { request: RunRequest; nothingToUndo: string[] } {
  const byId = new Map(records);
  const holders = holdersIn(state);
  const inverses = new Map(
    records.flatMap(([id, record]) => {
      if (only !== undefined && !only.has(id)) return [];
      // What another package holds too is left to it: the record is only forgotten.
      if (heldElsewhere(holders, name, record)) return [];
      const inverse = inverseOf(record, host.action(record.resource, record.action));
      return inverse === undefined ? [] : [[id, inverse] as const];
    }),
  );
  // dependents.get(x): the records that needed x.
  const dependents = new Map<string, string[]>();
  for (const [id, record] of records) {
    for (const need of record.needs)
      if (byId.has(need)) dependents.set(need, [...(dependents.get(need) ?? []), id]);
  }
  const undoFirst = (id: string): string[] => {
    const found = new Set<string>();
    const stack = [...(dependents.get(id) ?? [])];
    const seen = new Set<string>();
    for (let d = stack.pop(); d !== undefined; d = stack.pop()) {
      if (seen.has(d)) continue;
      seen.add(d);
      if (inverses.has(d)) found.add(d);
      else stack.push(...(dependents.get(d) ?? []));
    }
    return [...found];
  };
  const commands = [...inverses].map(([id, inverse]) => {
    const record = byId.get(id) as CommandRecord;
    return {
      id,
      resource: record.resource,
      action: inverse.action,
      params: inverse.params,
      needs: undoFirst(id),
      node: record.node,
      timeoutMs: defaults.undoTimeoutMs,
      retries: defaults.command.retries,
    };
  });
  const nothingToUndo = records.filter(([id]) => !inverses.has(id)).map(([id]) => id);
  return { request: { name, file, phase, commands }, nothingToUndo };
}
