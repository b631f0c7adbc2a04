import { isRunning } from '../core/process-identity.js';
import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SpinError } from '../core/errors.js';

/** The errno code of a Node fs or process error (`ENOENT`, `ENOSPC`), or undefined. */
export function errnoOf(error: unknown): string | undefined {
  return error instanceof Error && 'code' in error && typeof error.code === 'string'
    ? error.code
    : undefined;
}

/** The prefix of every temporary file an agent makes; such files are never a finished result. */
export const tempPrefix = '.spin-tmp-';

/**
 * A fresh temporary name next to `target`, in the same directory so a rename is atomic:
 * `.spin-tmp-<pid>-<12 hex>-<name>`. The writer's pid is in the name so that a leftover of a
 * writer that died (kill -9, power loss) can be told from a file being written now: see
 * `clearStaleTemps`.
 */
export function tempPathFor(target: string): string {
  return join(
    dirname(target),
    `${tempPrefix}${String(process.pid)}-${randomBytes(6).toString('hex')}-${basename(target)}`,
  );
}

const tempName = /^\.spin-tmp-([1-9][0-9]{0,9})-[0-9a-f]{12}-./s;

/**
 * The pid of the process that made the temporary file `name` (a base name, as `tempPathFor`
 * makes them), or undefined when `name` is not such a name: a user's own hidden file, even one
 * starting with `.spin-tmp-`, is never taken for one of spin's.
 */
export function tempWriterOf(name: string): number | undefined {
  const match = tempName.exec(name);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * Whether a process with this pid runs now (on this host, in this pid namespace; a zombie does
 * not). A recycled pid counts as alive, which errs on the side of leaving a file alone.
 */
export function processAlive(pid: number): boolean {
  return isRunning(pid);
}

/**
 * Removes from `dir` the leftovers of interrupted writes: regular files named by `tempPathFor`
 * whose writer is no longer alive. Files of live writers (this process included), anything
 * else and anything that is not a regular file are left as they are. Returns the names removed
 * and the names left, so a caller can tell whether `dir` holds anything else.
 */
export async function clearStaleTemps(dir: string): Promise<{ removed: string[]; left: string[] }> {
  const removed: string[] = [];
  const left: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const writer = tempWriterOf(entry.name);
    if (entry.isFile() && writer !== undefined && !processAlive(writer)) {
      await rm(join(dir, entry.name), { force: true });
      removed.push(entry.name);
    } else {
      left.push(entry.name);
    }
  }
  return { removed, left };
}

/**
 * Rethrows an fs failure as a SpinError: a full disk becomes `no_space` (retryable: space may be
 * freed), anything else `action_failed` carrying the errno. SpinErrors pass through unchanged.
 */
export function asSpinError(error: unknown, what: string): SpinError {
  if (error instanceof SpinError) return error;
  const errno = errnoOf(error);
  if (errno === 'ENOSPC' || errno === 'EDQUOT') {
    return new SpinError(
      'no_space',
      `No space left on the device while ${what}; nothing was left behind.`,
      {
        cause: error,
        retryable: true,
        suggestions: [
          'Free some space on the file system of $SPIN_HOME, then run the command again.',
        ],
      },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new SpinError('action_failed', `Failed while ${what}: ${message}`, {
    cause: error,
    ...(errno === undefined ? {} : { details: { errno } }),
  });
}

/**
 * Writes `data` to `target` atomically: a temporary file in the same directory, fsync, rename,
 * then fsync of the directory. Readers see the old content or the new, never a part; on failure
 * the temporary file is removed.
 */
export async function writeFileAtomic(target: string, data: string): Promise<void> {
  const temp = tempPathFor(target);
  try {
    const handle = await open(temp, 'wx', 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw asSpinError(error, `writing ${basename(target)}`);
  }
  const dir = await open(dirname(target), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
