import { isRunning } from '../core/process-identity.js';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import Database from 'better-sqlite3';
import { SpinError } from '../core/errors.js';
import { storeFailure } from './store-failure.js';
import type { BrokerPaths } from './broker-paths.js';

/** Who holds a broker lock: the daemon, or a CLI process running the broker embedded. */
export type BrokerRole = 'daemon' | 'embedded';

/** A held lock; `release` removes the pid file and lets the lock go. */
export interface BrokerLock {
  pid: number;
  release(): void;
}

/**
 * The broker that holds the lock of a home, as its pid file names it; undefined when no broker
 * holds it (a pid file left by one killed outright names nobody, even if its pid was reused).
 */
export function lockHolder(paths: BrokerPaths): { pid: number; role: string } | undefined {
  return isLocked(paths) ? pidFileHolder(paths) : undefined;
}

/** Whether a broker holds the lock: a read of the lock file is refused while it does. */
function isLocked(paths: BrokerPaths): boolean {
  if (!existsSync(paths.lockFile)) return false;
  const db = new Database(paths.lockFile, { readonly: true, timeout: 0 });
  try {
    db.prepare('SELECT count(*) FROM sqlite_master').get();
    return false;
  } catch (error) {
    if (isBusy(error)) return true;
    throw error;
  } finally {
    db.close();
  }
}

function isBusy(error: unknown): boolean {
  return error instanceof Database.SqliteError && error.code.startsWith('SQLITE_BUSY');
}

/** The pid and role written in a pid file, if it names a live process. */
function pidFileHolder(paths: BrokerPaths): { pid: number; role: string } | undefined {
  let text: string;
  try {
    text = readFileSync(paths.pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const [pidText = '', role = 'unknown'] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isRunning(pid) ? { pid, role } : undefined;
}

/**
 * Makes this process the one broker of a `SPIN_HOME` (one store owner, one socket). The lock is
 * SQLite's exclusive lock on `broker.lock`, held by a connection in exclusive locking mode: the
 * kernel keeps it while the process lives and drops it when it dies, even by kill -9, so there
 * is no stale lock to judge and no window in which two starting brokers both win. The pid file
 * is written (atomically) only once the lock is ours, to say who holds it. The home is made 0700,
 * so the lock, the socket and the store inside are private to the user. Throws `daemon_running`
 * (exit 3) naming the pid that holds it.
 */
export function acquireBrokerLock(paths: BrokerPaths, role: BrokerRole): BrokerLock {
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  chmodSync(paths.home, 0o700);
  // A moment's wait: `lockHolder` probing the file holds it for an instant.
  let db: Database.Database | undefined;
  try {
    db = new Database(paths.lockFile, { timeout: 250 });
    db.pragma('journal_mode = MEMORY'); // no journal file beside the lock
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; COMMIT');
  } catch (error) {
    db?.close();
    if (isBusy(error)) throw heldBy(paths);
    throw storeFailure(error, paths.lockFile);
  }
  const pending = `${paths.pidFile}.${String(process.pid)}`;
  try {
    writeFileSync(pending, `${String(process.pid)} ${role}\n`, { mode: 0o600 });
    renameSync(pending, paths.pidFile);
  } catch (error) {
    // A pid file that cannot be written (a full disk) is not left behind half-made.
    rmSync(pending, { force: true });
    db.close();
    throw pidFileFailure(error, paths.pidFile);
  }
  const held = db;
  return {
    pid: process.pid,
    release: () => {
      try {
        unlinkSync(paths.pidFile);
      } catch {
        // Already gone.
      }
      held.close();
    },
  };
}

/** The refusal of a second broker, naming the first if its pid file says who it is yet. */
function heldBy(paths: BrokerPaths): SpinError {
  const holder = pidFileHolder(paths);
  const who =
    holder === undefined ? 'another process' : `pid ${String(holder.pid)} (${holder.role})`;
  return new SpinError('daemon_running', `a broker already runs for ${paths.home}: ${who}`, {
    ...(holder === undefined ? {} : { details: { pid: holder.pid, role: holder.role } }),
    suggestions: ['stop it with `spin daemon stop`, or use it: spin talks to it by itself'],
  });
}

/** A pid file that could not be written: a full disk is `no_space` naming it. */
function pidFileFailure(error: unknown, path: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  return new SpinError('no_space', `The disk holding ${path} is full.`, {
    cause: error,
    retryable: true,
    suggestions: ['Free space on that disk and run the command again; nothing was changed.'],
  });
}
