import { isRunning } from '../core/process-identity.js';
import { watch } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname } from 'node:path';
import { SpinError } from '../core/errors.js';

import type { LockHolder } from '../core/state-types.js';

export type { LockHolder };

/** A held lock; `release` removes it if it is still ours. */
export interface StateLock {
  holder: LockHolder;
  release(): Promise<void>;
}

/**
 * Takes the lock of a state file (`<state>.lock`, created exclusively), so that two applies
 * never write one state at once. A lock whose process is gone (same host, pid not alive) is
 * taken over. Otherwise the lock is waited for up to `timeoutMs` (woken by the directory
 * changing, not by polling), then refused with `lock_held` (exit 3) naming the holder.
 * `onWait` hears of each holder it starts waiting for, so the user knows why nothing happens.
 */
export async function acquireStateLock(
  statePath: string,
  options: { timeoutMs?: number; command: string; onWait?: (holder: LockHolder) => void },
): Promise<StateLock> {
  const path = `${statePath}.lock`;
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const holder: LockHolder = {
    pid: process.pid,
    host: hostname(),
    since: new Date().toISOString(),
    command: options.command,
  };
  const deadline = Date.now() + (options.timeoutMs ?? 0);
  let waitingFor: LockHolder | undefined;
  for (;;) {
    if (await tryCreate(path, holder)) {
      return { holder, release: () => releaseIfOurs(path, holder) };
    }
    const current = await readHolder(path);
    if (current === undefined) continue; // removed between our two steps: try again
    if (current.host === holder.host && !isRunning(current.pid)) {
      await takeOver(path, current);
      continue;
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new SpinError(
        'lock_held',
        `state ${statePath} is locked by pid ${String(current.pid)} on ${current.host} since ${current.since} (${current.command})`,
        {
          details: { ...current },
          suggestions: ['wait for it to finish, or pass --lock-timeout to wait'],
        },
      );
    }
    if (waitingFor?.pid !== current.pid || waitingFor.since !== current.since) {
      waitingFor = current;
      options.onWait?.(current);
    }
    await changeOf(path, left);
  }
}

/**
 * Creates the lock file naming `holder`; false when another holds it. A lock that cannot be
 * written whole (a full disk) is removed again, never left behind half-made.
 */
async function tryCreate(path: string, holder: LockHolder): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, 'wx', 0o600);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockFailure(error, path);
  }
  try {
    await handle.writeFile(JSON.stringify(holder) + '\n');
    await handle.sync();
  } catch (error) {
    await handle.close();
    await rm(path, { force: true });
    throw lockFailure(error, path);
  }
  await handle.close();
  return true;
}

/** A lock file that could not be made: a full disk is `no_space` naming it. */
function lockFailure(error: unknown, path: string): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== 'ENOSPC' && code !== 'EDQUOT') return error;
  return new SpinError(
    'no_space',
    `The disk holding ${path} is full: the state lock cannot be taken.`,
    {
      cause: error,
      retryable: true,
      suggestions: ['Free space on that disk and run the command again; nothing was changed.'],
    },
  );
}

/**
 * Who holds the lock of the state at `statePath` now, if anyone alive does (a lock whose process
 * is gone on this host does not count): for readers that do not take the lock, to say that what
 * they read was being changed.
 */
export async function lockHolderOf(statePath: string): Promise<LockHolder | undefined> {
  const current = await readHolder(`${statePath}.lock`);
  if (current === undefined) return undefined;
  return current.host === hostname() && !isRunning(current.pid) ? undefined : current;
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder>;
    return {
      pid: typeof parsed.pid === 'number' ? parsed.pid : 0,
      host: typeof parsed.host === 'string' ? parsed.host : '?',
      since: typeof parsed.since === 'string' ? parsed.since : '?',
      command: typeof parsed.command === 'string' ? parsed.command : '?',
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    // A lock file cut short by a crash while it was written: its writer is gone.
    return { pid: 0, host: hostname(), since: '?', command: '?' };
  }
}

/** Moves a dead holder's lock aside; of several processes racing, one rename wins. */
async function takeOver(path: string, dead: LockHolder): Promise<void> {
  const aside = `${path}.stale-${String(dead.pid)}-${String(process.pid)}`;
  try {
    await rename(path, aside);
    await rm(aside, { force: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

async function releaseIfOurs(path: string, holder: LockHolder): Promise<void> {
  const current = await readHolder(path);
  if (current?.pid === holder.pid && current.since === holder.since)
    await rm(path, { force: true });
}

/** Resolves when the lock's directory changes, or after `ms`, whichever comes first. */
function changeOf(path: string, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const name = basename(path);
    const watcher = watch(dirname(path), (_event, file) => {
      if (file === null || file === name) done();
    });
    // A holder that dies without removing its lock changes nothing; check it again now and then.
    const timer = setTimeout(done, Math.min(ms, 1000));
    // The lock may have gone between the caller's look and the watch: then look again at once.
    stat(path).catch(done);
    function done(): void {
      clearTimeout(timer);
      watcher.close();
      resolve();
    }
  });
}
