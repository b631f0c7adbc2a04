import type { Agent } from '../agents/agent.js';
import { SpinError } from '../core/errors.js';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import { refuseForeignClaims, claimsOf } from '../plan/ownership.js';
import type { ReconcileListener } from './events.js';
import { outcomeChange } from './record-outcome.js';
import { ReconcileSession } from './session.js';

/** What `spin import` is asked to take over. */
export interface ImportOptions {
  home: string;
  statePath: string;
  packages: readonly PackageSpec[];
  /** `package/command`, or `package` for each of its commands that finds its result there. */
  addresses: readonly string[];
  lockTimeoutMs?: number;
  /** Agents in place of the built-in ones (see SessionOptions). */
  agents?: readonly Agent[];
  emit?: ReconcileListener;
}

/** What became of one command that an import looked at. */
export interface ImportOutcome {
  package: string;
  id: string;
  /** imported: now in the state; absent: nothing there (apply will create it); managed: it was. */
  result: 'imported' | 'absent' | 'managed';
  /** What the agent saw of it. */
  observed?: Record<string, unknown>;
}

/**
 * Takes what exists already and no package manages (a volume made by hand, the VMs of a state
 * that was lost) under a package, as if the package had made it: records each command as
 * succeeded, with what its agent observes, so that apply leaves it as it is and destroy undoes
 * it. Changes nothing on the machine. Refused with `state_conflict` (exit 3) when another package
 * owns it or, for a command named alone, when the state manages it already; `not_found` (exit 2)
 * when a command named alone finds nothing to import. A package named alone imports those of its
 * commands whose result is there, and reports the others.
 */
export async function importCommands(options: ImportOptions): Promise<ImportOutcome[]> {
  const session = await ReconcileSession.open({
    ...options,
    command: 'spin import',
    onLockWait: (holder) => options.emit?.({ type: 'lock-wait', holder }),
  });
  try {
    await session.recover(options.emit ?? (() => undefined));
    const chosen = resolveAddresses(options.packages, options.addresses);
    const data = session.state.data;
    const managed = (pkg: PackageSpec, command: CommandSpec): boolean =>
      data.packages[pkg.name]?.commands[command.id]?.status === 'succeeded';
    for (const { pkg, command, named } of chosen) {
      if (named && managed(pkg, command)) {
        throw new SpinError(
          'state_conflict',
          `${pkg.name}/${command.id} is managed already: the state records it as applied`,
          { suggestions: ['spin plan shows whether it needs a change.'] },
        );
      }
    }
    const candidates = chosen.filter(({ pkg, command }) => !managed(pkg, command));
    await refuseForeignClaims(
      candidates.map(({ pkg, command }) => ({ ...pkg, commands: [command] })),
      data,
    );
    const outcomes: ImportOutcome[] = chosen
      .filter(({ pkg, command }) => managed(pkg, command))
      .map(({ pkg, command }) => ({ package: pkg.name, id: command.id, result: 'managed' }));
    const found: { pkg: PackageSpec; command: CommandSpec; observed: Record<string, unknown> }[] =
      [];
    for (const { pkg, command, named } of candidates) {
      const seen = await session.host.observe(command);
      if (seen === undefined) {
        throw new SpinError(
          'invalid_input',
          `${pkg.name}/${command.id} cannot be imported: ${command.resource}.${command.action} cannot observe what it made`,
        );
      }
      if (seen.present) {
        found.push({ pkg, command, observed: seen.details });
        continue;
      }
      if (named) {
        throw new SpinError(
          'not_found',
          `nothing to import for ${pkg.name}/${command.id}: what it would make is not there (${claimsOf(command.resource, command.action, command.params).join(', ')})`,
          { suggestions: ['spin apply creates it.'] },
        );
      }
      outcomes.push({ package: pkg.name, id: command.id, result: 'absent' });
    }
    if (found.length > 0) {
      const state = session.state;
      await state.change({ op: 'serial', serial: state.data.serial + 1 });
      const now = Date.now();
      for (const { pkg, command, observed } of found) {
        const change = outcomeChange(
          state.data,
          {
            package: pkg.name,
            id: command.id,
            state: 'succeeded',
            attempts: 0,
            finishedAt: now,
            output: 'imported: it existed already',
            observed,
          },
          command,
          'apply',
          pkg.file,
        );
        if (change !== undefined) await state.change(change);
        outcomes.push({ package: pkg.name, id: command.id, result: 'imported', observed });
      }
    }
    return outcomes;
  } finally {
    await session.close();
  }
}

/** The commands `addresses` name, in file order; `named` when the address named the command. */
function resolveAddresses(
  packages: readonly PackageSpec[],
  addresses: readonly string[],
): { pkg: PackageSpec; command: CommandSpec; named: boolean }[] {
  const chosen = new Map<string, { pkg: PackageSpec; command: CommandSpec; named: boolean }>();
  for (const address of addresses) {
    const [name, id] = address.includes('/') ? address.split('/', 2) : [address, undefined];
    const pkg = packages.find((p) => p.name === name);
    const commands = pkg?.commands.filter((c) =>
      id === undefined ? claimsOf(c.resource, c.action, c.params).length > 0 : c.id === id,
    );
    if (
      pkg === undefined ||
      commands === undefined ||
      (id !== undefined && commands.length === 0)
    ) {
      throw new SpinError('invalid_input', `no command matches '${address}'`, {
        suggestions: [
          `name a command as <package>/<id> of the files given; packages: ${packages.map((p) => p.name).join(', ')}`,
        ],
      });
    }
    for (const command of commands) {
      const key = `${pkg.name}/${command.id}`;
      const named = id !== undefined || chosen.get(key)?.named === true;
      chosen.set(key, { pkg, command, named });
    }
  }
  return [...chosen.values()];
}
