import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { SpinError } from '../core/errors.js';
import type { BrokerPaths } from './broker-paths.js';

/** Who holds a broker lock: the daemon, or a CLI process running the broker embedded. */
export type BrokerRole = 'daemon' | 'embedded';

/** A held lock; `release` removes the pid file if it is still ours. */
export interface BrokerLock {
  pid: number;
  release(): void;
}

/** The pid and role written in a pid file, if it names a live process. */
export function lockHolder(paths: BrokerPaths): { pid: number; role: string } | undefined {
  let text: string;
  try {
    text = readFileSync(paths.pidFile, 'utf8');
  } catch {
    return undefined;
  }
  const [pidText = '', role = 'unknown'] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) ? { pid, role } : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Makes this process the one broker of a `SPIN_HOME` (one store owner, one socket), by creating
 * the pid file exclusively. A pid file of a dead process is stale and replaced. The home is made
 * 0700, so the socket and store inside are private to the user. Throws `daemon_running` (exit 3)
 * naming the pid that holds it.
 */
export function acquireBrokerLock(paths: BrokerPaths, role: BrokerRole): BrokerLock {
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  chmodSync(paths.home, 0o700);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(paths.pidFile, 'wx', 0o600);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = lockHolder(paths);
      if (holder !== undefined) {
        throw new SpinError(
          'daemon_running',
          `a broker already runs for ${paths.home}: pid ${String(holder.pid)} (${holder.role})`,
          {
            details: { pid: holder.pid, role: holder.role },
            suggestions: ['stop it with `spin daemon stop`, or use it: spin talks to it by itself'],
          },
        );
      }
      unlinkStale(paths.pidFile);
      continue;
    }
    writeSync(fd, `${String(process.pid)} ${role}\n`);
    closeSync(fd);
    return {
      pid: process.pid,
      release: () => {
        try {
          const [pid] = readFileSync(paths.pidFile, 'utf8').trim().split(/\s+/);
          if (pid === String(process.pid)) unlinkSync(paths.pidFile);
        } catch {
          // Already gone.
        }
      },
    };
  }
  throw new SpinError('lock_held', `could not take the broker lock ${paths.pidFile}`);
}

function unlinkStale(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
