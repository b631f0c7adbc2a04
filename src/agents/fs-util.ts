import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
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

/** A fresh temporary name next to `target`, in the same directory so a rename is atomic. */
export function tempPathFor(target: string): string {
  return join(
    dirname(target),
    `${tempPrefix}${randomBytes(6).toString('hex')}-${basename(target)}`,
  );
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
