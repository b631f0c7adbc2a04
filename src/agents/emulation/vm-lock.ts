import Database from 'better-sqlite3';
import { SpinError } from '../../core/errors.js';
import { abortedError } from '../abort.js';
import type { VmPaths } from './vm-config.js';
import { pause } from './vm-process.js';

/** Holders in this process, by lock file: each waits for the one before it. */
const queued = new Map<string, Promise<void>>();

/** How long a start, restart or stop waits for another one of the same VM to finish. */
const waitMs = 120_000;

/**
 * Runs `fn` while holding the lifecycle lock of one VM: what decides whether the VM runs — a
 * start's launch, a supervisor's restart, a stop's intent — happens under it, one at a time
 * across every process of the home (the daemon, `spin agent emulation`, an embedded apply), so
 * that a stop can never fall between a supervisor's last look and its launch. The lock is
 * SQLite's exclusive lock on `vms/<id>/lifecycle.lock`, which the kernel drops when its holder
 * dies (kill -9 included): nothing stale to judge. Holders of this process queue in memory
 * first. Waits at most two minutes (a launch takes well under one), then throws a retryable
 * `timeout`; throws at once when `signal` aborts.
 */
export async function withVmLock<T>(
  paths: VmPaths,
  fn: () => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const before = queued.get(paths.lock) ?? Promise.resolve();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const mine = before.then(() => gate);
  queued.set(paths.lock, mine);
  try {
    await before;
    const held = await lockFile(paths, signal);
    try {
      return await fn();
    } finally {
      held.close();
    }
  } finally {
    release();
    if (queued.get(paths.lock) === mine) queued.delete(paths.lock);
  }
}

async function lockFile(
  paths: VmPaths,
  signal: AbortSignal | undefined,
): Promise<Database.Database> {
  const deadline = Date.now() + waitMs;
  const never = new AbortController().signal;
  let delay = 5;
  for (;;) {
    const db = new Database(paths.lock, { timeout: 0 });
    try {
      db.pragma('journal_mode = MEMORY'); // no journal file beside the lock
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      return db;
    } catch (error) {
      db.close();
      if (!(error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY')))
        throw error;
    }
    if (signal?.aborted === true) throw abortedError(signal, `Waiting for VM ${paths.id}`);
    if (Date.now() >= deadline) {
      throw new SpinError(
        'timeout',
        `VM ${paths.id} is being started or stopped by another process for over ${String(waitMs / 1000)}s.`,
        { retryable: true },
      );
    }
    await pause(delay, signal ?? never);
    delay = Math.min(delay * 2, 100);
  }
}
