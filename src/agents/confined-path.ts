import { lstat, mkdir, realpath } from 'node:fs/promises';
import { join, relative, isAbsolute, sep } from 'node:path';
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
 * lead outside it: the components are checked as safe-path.ts does, then each existing component
 * is `lstat`ed and any symbolic link refused (whether or not it leads out: a link can be retargeted
 * after the check), and the real path of what exists must stay inside the real root. The root is
 * created when missing. Throws SpinError `path_outside_root`.
 *
 * Agents run one command per queue at a time and own their root, so the window between this check
 * and the use of the path is not a practical race; file opens add O_NOFOLLOW where they can.
 */
export async function confinePath(
  root: string,
  value: string,
  kind: PathKind,
): Promise<ConfinedPath> {
  const problem = pathProblem(value, kind);
  if (problem !== undefined) throw refuse(value, problem);
  const realRoot = await realRootOf(root);
  const parts = value.split('/');
  let current = realRoot;
  for (const [index, part] of parts.entries()) {
    current = join(current, part);
    let stats;
    try {
      stats = await lstat(current);
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

const realRoots = new Map<string, string>();

/**
 * The real path of a root, created when missing. Kept for the life of the process: plans observe
 * thousands of paths under the same few roots.
 */
async function realRootOf(root: string): Promise<string> {
  const known = realRoots.get(root);
  if (known !== undefined) return known;
  await mkdir(root, { recursive: true });
  const real = await realpath(root);
  realRoots.set(root, real);
  return real;
}
