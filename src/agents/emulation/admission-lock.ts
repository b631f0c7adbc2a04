import { join } from 'node:path';
import Database from 'better-sqlite3';
import { abortedError } from '../abort.js';
import { pause } from './vm-process.js';

const lockName = '.admission.lock';
const firstRetryMs = 2;
const slowestRetryMs = 50;

function isBusy(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
}

/**
 * Takes the admission lock of a VM root (`vms/.admission.lock`), so that of two starts on one node
 * (two agents, two applies of one home) only one at a time checks what is free and launches its
 * qemu: the second sees the first's VM running. The lock is SQLite's exclusive lock on that file,
 * which the kernel drops when its process dies (even by kill -9), so no stale lock is ever judged.
 * Waits by retrying, 2 ms at first and at most 50 ms apart (a holder keeps it for one launch, tens
 * of milliseconds), until it is taken or `signal` aborts. Returns its release.
 */
export async function holdAdmissionLock(vmsRoot: string, signal: AbortSignal): Promise<() => void> {
  const file = join(vmsRoot, lockName);
  for (let delay = firstRetryMs; ; delay = Math.min(delay * 2, slowestRetryMs)) {
    // A connection of its own per attempt: one that failed is closed, so that it holds no shared
    // lock while it waits, which would keep every other waiter out too.
    const db = new Database(file, { timeout: 0 });
    try {
      db.pragma('journal_mode = MEMORY'); // no journal file beside the lock
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      return () => {
        db.close();
      };
    } catch (error) {
      db.close();
      if (!isBusy(error)) throw error;
    }
    await pause(delay, signal);
    if (signal.aborted) throw abortedError(signal, 'Waiting for the admission lock');
  }
}
