import Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';

/**
 * Why a SQLite file of the broker (its store, its lock) could not be opened or written, as the
 * user should read it: a full disk is `no_space` naming the file, a file another process kept
 * locked `lock_held`, anything else `store_failed`. A SpinError passes through as it is.
 */
export function storeFailure(error: unknown, file: string): SpinError {
  if (error instanceof SpinError) return error;
  const code = error instanceof Database.SqliteError ? error.code : '';
  const cause = error instanceof Error ? error.message : String(error);
  // SHMSIZE: the shared-memory index beside a WAL file could not grow, which is a full disk too.
  if (code === 'SQLITE_FULL' || code === 'SQLITE_IOERR_SHMSIZE') {
    return new SpinError('no_space', `The disk holding the broker store ${file} is full.`, {
      cause: error,
      retryable: true,
      suggestions: ['Free space on that disk and run the command again; nothing was lost.'],
    });
  }
  if (code.startsWith('SQLITE_BUSY')) {
    return new SpinError(
      'lock_held',
      `The broker store ${file} stayed locked by another process.`,
      {
        cause: error,
        retryable: true,
      },
    );
  }
  return new SpinError('store_failed', `The broker store ${file} failed: ${cause}`, {
    cause: error,
  });
}
