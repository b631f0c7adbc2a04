import type { CommandInput, FinishedCommand } from '../broker/broker-types.js';
import { outputOf, type CommandOutcome, type PackageMeta } from './run-packages.js';
import { specHash } from '../plan/spec-hash.js';
import type { StateData } from '../core/state-types.js';

/**
 * Writes one command's outcome into the state data. An applied command gets its record (what
 * it is, how it ended, its output tail); a command undone by prune or destroy loses its record
 * when the undo succeeded, and its package goes when no command is left.
 */
export function recordOutcome(
  state: StateData,
  outcome: CommandOutcome,
  spec: CommandInput & { fileNeeds?: string[] },
  phase: 'apply' | 'prune' | 'destroy',
  file?: string,
): void {
  const pkg = (state.packages[outcome.package] ??= {
    file: file ?? '',
    appliedAt: new Date(outcome.finishedAt).toISOString(),
    commands: {},
  });
  if (phase !== 'apply') {
    if (outcome.state === 'succeeded') {
      Reflect.deleteProperty(pkg.commands, outcome.id);
      if (Object.keys(pkg.commands).length === 0)
        Reflect.deleteProperty(state.packages, outcome.package);
    }
    return;
  }
  if (file !== undefined) pkg.file = file;
  pkg.appliedAt = new Date(outcome.finishedAt).toISOString();
  pkg.commands[outcome.id] = {
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
    ...(outcome.observed === undefined ? {} : { observed: outcome.observed }),
    serial: state.serial,
    ...(outcome.startedAt === undefined
      ? {}
      : { startedAt: new Date(outcome.startedAt).toISOString() }),
    finishedAt: new Date(outcome.finishedAt).toISOString(),
  };
}

/**
 * Writes into the state what a package of another process finished (a spin that died, or that
 * left its run to the daemon), as that process would have: returns how many results it wrote.
 * A record the state already has from later is kept.
 */
export function recordFinished(
  state: StateData,
  name: string,
  meta: PackageMeta,
  finished: readonly FinishedCommand[],
): number {
  let recorded = 0;
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
    recordOutcome(state, outcome, spec, meta.phase, meta.file);
    recorded++;
  }
  return recorded;
}
