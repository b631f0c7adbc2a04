import { SpinError } from '../core/errors.js';
import type { PackagePlan } from './plan.js';
import { runsCommand } from './plan.js';

/**
 * Which commands of a plan apply runs, after `--target` and `--exclude`. A target names a command
 * as `id` (in any package) or `package/id`; it brings along, transitively, the commands it needs.
 * An excluded command does not run, and neither does anything that needs it, transitively. Of
 * the selected commands only those whose plan says so (create, update, drifted) run.
 * Returns, per package name, the ids to run; throws `invalid_input` for a name that matches
 * nothing.
 */
export function selectCommands(
  plans: readonly PackagePlan[],
  targets: readonly string[],
  excludes: readonly string[],
): Map<string, Set<string>> {
  const selected = new Map<string, Set<string>>();
  const unmatched = new Set([...targets, ...excludes]);
  for (const plan of plans) {
    const needsOf = new Map(
      plan.items.flatMap((i) => (i.command ? [[i.id, i.command.needs] as const] : [])),
    );
    const matches = (names: readonly string[]): Set<string> => {
      const ids = new Set<string>();
      for (const name of names) {
        const [pkg, id] = name.includes('/') ? name.split('/', 2) : [undefined, name];
        if ((pkg === undefined || pkg === plan.name) && needsOf.has(id)) {
          ids.add(id);
          unmatched.delete(name);
        }
      }
      return ids;
    };
    let chosen = new Set(needsOf.keys());
    if (targets.length > 0) chosen = closure(matches(targets), (id) => needsOf.get(id) ?? []);
    const dependents = new Map<string, string[]>();
    for (const [id, needs] of needsOf)
      for (const need of needs) dependents.set(need, [...(dependents.get(need) ?? []), id]);
    for (const id of closure(matches(excludes), (x) => dependents.get(x) ?? [])) chosen.delete(id);
    const run = new Set(
      plan.items.filter((i) => chosen.has(i.id) && runsCommand.has(i.action)).map((i) => i.id),
    );
    selected.set(plan.name, run);
  }
  if (unmatched.size > 0) {
    throw new SpinError(
      'invalid_input',
      `no command matches ${[...unmatched].map((n) => `'${n}'`).join(', ')}`,
      {
        suggestions: ['name a command as <id> or <package>/<id>'],
      },
    );
  }
  return selected;
}

function closure(start: Set<string>, next: (id: string) => readonly string[]): Set<string> {
  const seen = new Set(start);
  const stack = [...start];
  for (let id = stack.pop(); id !== undefined; id = stack.pop()) {
    for (const n of next(id)) {
      if (!seen.has(n)) {
        seen.add(n);
        stack.push(n);
      }
    }
  }
  return seen;
}
