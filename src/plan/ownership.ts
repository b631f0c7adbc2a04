import { findAction } from '../agents/registry.js';
import { SpinError } from '../core/errors.js';
import type { PackageSpec } from '../core/package.js';
import type { StateData } from '../core/state-types.js';
import { whereIs } from './plan-refusals.js';

/** A command that holds, or asks to hold, one key (see ActionSpec.claims). */
export interface Claim {
  package: string;
  command: string;
  /** The file of the package: where the command is written. */
  file: string;
}

/** The keys a command of `resource`/`action` with `params` holds once it succeeded. */
export function claimsOf(
  resource: string,
  action: string,
  params: Readonly<Record<string, unknown>>,
): string[] {
  // Keys are of names, which agents normalise to NFC (see confinePath): so are the keys.
  return (findAction(resource, action)?.claims?.(params) ?? []).map((key) => key.normalize('NFC'));
}

/** Every key the state's succeeded commands hold, with the command that holds it. */
function* heldClaims(state: StateData): Generator<{ key: string; claim: Claim }> {
  for (const [name, pkg] of Object.entries(state.packages)) {
    for (const [id, record] of Object.entries(pkg.commands)) {
      if (record.status !== 'succeeded') continue;
      for (const key of claimsOf(record.resource, record.action, record.params)) {
        yield { key, claim: { package: name, command: id, file: pkg.file } };
      }
    }
  }
}

/**
 * Who owns what: for each key, the package of the state whose succeeded command holds it. A
 * key two packages hold (a state written before ownership was kept) keeps its first holder.
 */
export function ownersIn(state: StateData): Map<string, Claim> {
  const owners = new Map<string, Claim>();
  for (const { key, claim } of heldClaims(state)) if (!owners.has(key)) owners.set(key, claim);
  return owners;
}

/**
 * Which packages of the state hold each key (their succeeded commands claim it), built once so
 * that asking about every record of a package costs one pass over the state, not one per record.
 */
export function holdersIn(state: StateData): Map<string, Set<string>> {
  const holders = new Map<string, Set<string>>();
  for (const { key, claim } of heldClaims(state)) {
    const names = holders.get(key) ?? new Set<string>();
    names.add(claim.package);
    holders.set(key, names);
  }
  return holders;
}

/**
 * Whether another package than `name` holds a key of `record` too (a state written before
 * ownership was kept let two packages take one volume): undoing the record would take it from
 * that package, so prune and destroy only forget such a record. `holders` is `holdersIn(state)`.
 */
export function heldElsewhere(
  holders: ReadonlyMap<string, ReadonlySet<string>>,
  name: string,
  record: { resource: string; action: string; params: Record<string, unknown> },
): boolean {
  return claimsOf(record.resource, record.action, record.params).some((key) =>
    [...(holders.get(key) ?? [])].some((holder) => holder !== name),
  );
}

/**
 * Refuses packages that claim what another package owns, or what another of them claims too:
 * a volume, an image, a VM id or a forwarded host port belongs to the package that created it,
 * and another package that asks for it would otherwise adopt it ("volume one exists"), and
 * destroy it later under its owner. Throws SpinError `state_conflict` (exit 3) naming each
 * conflict with the file and line of both claims, before anything runs.
 */
export async function refuseForeignClaims(
  packages: readonly PackageSpec[],
  state: StateData,
): Promise<void> {
  const owners = ownersIn(state);
  const conflicts: { key: string; claim: Claim; owner: Claim; owned: boolean }[] = [];
  for (const pkg of packages) {
    for (const command of pkg.commands) {
      const claim = { package: pkg.name, command: command.id, file: pkg.file };
      for (const key of claimsOf(command.resource, command.action, command.params)) {
        const owner = owners.get(key);
        if (owner === undefined) {
          owners.set(key, claim);
          continue;
        }
        if (owner.package === pkg.name) continue;
        conflicts.push({ key, claim, owner, owned: Object.hasOwn(state.packages, owner.package) });
      }
    }
  }
  if (conflicts.length === 0) return;
  const lines = await Promise.all(
    conflicts.map(async ({ key, claim, owner, owned }) => {
      const [at, ownerAt] = await Promise.all([
        whereIs(claim.file, claim.command),
        whereIs(owner.file, owner.command),
      ]);
      return owned
        ? `${at}: ${claim.package}/${claim.command} claims ${key}, which package ${owner.package} owns (${ownerAt}, command ${owner.command})`
        : `${at}: ${claim.package}/${claim.command} claims ${key}, which ${owner.package}/${owner.command} claims too (${ownerAt})`;
    }),
  );
  throw new SpinError(
    'state_conflict',
    `${lines.length === 1 ? 'A package claims' : `${String(lines.length)} claims are of`} what another package owns; nothing was run:\n  ${lines.join('\n  ')}`,
    {
      details: {
        conflicts: conflicts.map(({ key, claim, owner }) => ({ key, claim, owner })),
      },
      suggestions: [
        'Give the resource another name in one of the packages, or move the command into the package that owns it.',
        'To hand it over, destroy the owning package first (spin destroy <package>): it undoes what it owns.',
      ],
    },
  );
}
