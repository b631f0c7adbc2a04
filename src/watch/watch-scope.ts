import type { Stats } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { agentRoots } from '../agents/agent-roots.js';
import { packageSuffix } from '../load/input-files.js';

/** Which paths below a watched directory are package files of the watch. */
export interface WatchScope {
  /** The watched directory, absolute. */
  dir: string;
  /**
   * True for a path the watch never looks at: outside the directory, in a dot-directory or
   * `node_modules` (as `spin apply dir/` skips them), inside spin's own files (the home with its
   * state, logs, broker store and images, when they live below the directory), or a file that
   * is not `*.spin.yaml`. Directories are only refused for their place, never for their name's
   * ending, so that the watcher can descend into them; without `stats` a path is judged by place
   * and name alone.
   */
  ignored(path: string, stats?: Pick<Stats, 'isFile'>): boolean;
  /** True for a package file the watch manages (`ignored` false and the name ends right). */
  includes(file: string): boolean;
}

/**
 * The scope of a watch of `dir` by a spin whose home is `home` and state file `statePath`.
 * spin's own writes never trigger a reconcile because they are out of scope: a home strictly
 * below the directory is left out whole; a home that holds the directory leaves out its agent
 * roots (images, VMs, work) where they fall inside it; the state file and its companions are
 * never package files. Without a home (a watch whose packages a fleet's coordinator
 * reconciles), spin writes nothing here and only the place and name of a path count.
 */
export function watchScope(dir: string, home?: string, statePath?: string): WatchScope {
  const root = resolve(dir);
  const owned = home === undefined ? [] : ownedBelow(root, resolve(home));
  const state = statePath === undefined ? undefined : resolve(statePath);
  const ignored = (path: string, stats?: Pick<Stats, 'isFile'>): boolean => {
    const full = resolve(path);
    if (full === root) return false;
    const rel = relative(root, full);
    if (rel.startsWith('..') || isAbsolute(rel)) return true;
    if (rel.split(sep).some((part) => part.startsWith('.') || part === 'node_modules')) return true;
    if (owned.some((p) => full === p || isBelow(p, full))) return true;
    if (state !== undefined && (full === state || full.startsWith(`${state}.`))) return true;
    return stats?.isFile() === true && !full.endsWith(packageSuffix);
  };
  return {
    dir: root,
    ignored,
    includes: (file) => file.endsWith(packageSuffix) && !ignored(file),
  };
}

/** What of spin's home lies below the watched directory: the home whole, or its agent roots. */
function ownedBelow(root: string, home: string): string[] {
  const roots = agentRoots(home);
  return (isBelow(root, home) ? [home] : [roots.images, roots.vms, roots.work]).filter((p) =>
    isBelow(root, p),
  );
}

/** True when `path` lies strictly below `dir`. */
function isBelow(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
}
