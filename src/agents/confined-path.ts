import { lstatSync, type Stats } from 'node:fs';
import { mkdir, realpath } from 'node:fs/promises';
import { basename, dirname, join, relative, isAbsolute, sep } from 'node:path';
import { SpinError } from '../core/errors.js';
import { errnoOf } from './fs-util.js';
import { pathProblem, type PathKind } from './safe-path.js';

/** What a confined path names right now. */
export type ConfinedKind = 'file' | 'directory' | 'other' | 'missing';

/** A path proven to lie inside its root when it was checked. */
export interface ConfinedPath {
  /** The absolute path: the real root joined with the checked components. */
  path: string;
  kind: ConfinedKind;
  /** Size in bytes when `kind` is `file`. */
  size: number;
}

function refuse(value: string, why: string): SpinError {
  return new SpinError('path_outside_root', `Path '${value}' is refused: ${why}.`, {
    details: { path: value },
  });
}

function inside(root: string, candidate: string): boolean {
  const rel = relative(root, candidate);
  return rel === '' || (!isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${sep}`));
}

/**
 * Resolves `value` (a package-given path of `kind`) under `root`, refusing anything that could
 * lead outside it: the root is opened with `confineRoot` (never through a link), the components
 * are checked as safe-path.ts does, then each existing component is `lstat`ed and any symbolic
 * link refused (whether or not it leads out: a link can be retargeted after the check), and the
 * real path of what exists must stay inside the real root. Throws SpinError `path_outside_root`.
 *
 * Agents run one command per queue at a time and own their root, so the window between this check
 * and the use of the path is not a practical race; file opens add O_NOFOLLOW where they can.
 *
 * The `lstat`s are synchronous: each takes microseconds on the disk that also holds the broker's
 * store (whose SQLite calls are synchronous too), while a round trip through libuv's thread pool,
 * shared with the syncs of the store and the state journal, took longer than the rest of a
 * light command (an apply of 1,000 volumes: 1.5 s with them queued, 0.8 s without).
 */
export async function confinePath(
  root: string,
  value: string,
  kind: PathKind,
): Promise<ConfinedPath> {
  const problem = pathProblem(value, kind);
  if (problem !== undefined) throw refuse(value, problem);
  // One name, one file: `café` typed as one character or as `e` and a combining accent.
  const parts = value.normalize('NFC').split('/');
  const realRoot = await confineRoot(root);
  let current = realRoot;
  for (const [index, part] of parts.entries()) {
    current = join(current, part);
    let stats;
    try {
      stats = lstatSync(current);
    } catch (error) {
      if (errnoOf(error) === 'ENOENT')
        return { path: join(realRoot, ...parts), kind: 'missing', size: 0 };
      if (errnoOf(error) === 'ENOTDIR') throw refuse(value, 'a component is not a directory');
      throw error;
    }
    if (stats.isSymbolicLink())
      throw refuse(value, `'${parts.slice(0, index + 1).join('/')}' is a symbolic link`);
    const last = index === parts.length - 1;
    if (!last && !stats.isDirectory()) throw refuse(value, 'a component is not a directory');
    if (last) {
      // Every component was lstat'ed and none is a link, '.' or '..': the path is what it says.
      if (!inside(realRoot, current)) throw refuse(value, 'it resolves outside the root');
      const kindNow: ConfinedKind = stats.isFile()
        ? 'file'
        : stats.isDirectory()
          ? 'directory'
          : 'other';
      return { path: current, kind: kindNow, size: stats.isFile() ? stats.size : 0 };
    }
  }
  throw refuse(value, 'it is empty');
}

const realHomes = new Map<string, string>();

/**
 * The real path of `root`, an agent root (agentRoots: a directory directly under the spin home),
 * created when missing; the home is created too. The home may itself be, or lie under, a
 * symbolic link (where a user keeps it is theirs to choose), but nothing under it is followed:
 * a root that is a link, or not a directory, is refused with SpinError `path_outside_root`
 * naming it, and nothing is created or changed through it. Checked on every call (one `lstat`),
 * so a root swapped for a link after a first use is refused too; only the home's real path is
 * kept for the life of the process.
 */
export async function confineRoot(root: string): Promise<string> {
  const home = dirname(root);
  let realHome = realHomes.get(home);
  if (realHome === undefined) {
    await mkdir(home, { recursive: true, mode: 0o700 });
    realHome = await realpath(home);
    realHomes.set(home, realHome);
  }
  const real = join(realHome, basename(root));
  let stats = lstatOrMissing(real);
  if (stats === undefined) {
    try {
      await mkdir(real, { mode: 0o755 }); // never follows: an existing link fails with EEXIST
    } catch (error) {
      if (errnoOf(error) !== 'EEXIST') throw error;
    }
    stats = lstatOrMissing(real);
  }
  if (stats?.isSymbolicLink() === true) {
    throw refuseRoot(root, 'is a symbolic link, and spin follows no link under its home');
  }
  if (stats?.isDirectory() !== true) throw refuseRoot(root, 'is not a directory');
  return real;
}

function lstatOrMissing(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

function refuseRoot(root: string, why: string): SpinError {
  return new SpinError(
    'path_outside_root',
    `The ${basename(root)} root '${root}' ${why}; nothing was changed.`,
    {
      details: { path: root },
      suggestions: [
        `Make '${root}' a plain directory (move what the link points to into it), or set SPIN_HOME to where spin should keep its files.`,
      ],
    },
  );
}
