import { acquireStateLock, type LockHolder } from './state-lock.js';
import { StateFile } from './state-file.js';

/** The state file, open, with its lock held. */
export interface LockedState {
  state: StateFile;
  release(): Promise<void>;
}

/**
 * Takes the state's lock, then reads the state. A corrupt or foreign state file fails here with
 * exit 3, before anything runs, and the lock is given back.
 */
export async function openLockedState(
  path: string,
  options: { timeoutMs: number; command: string; onWait?: (holder: LockHolder) => void },
): Promise<LockedState> {
  const lock = await acquireStateLock(path, options);
  try {
    const state = await StateFile.open(path);
    return { state, release: () => lock.release() };
  } catch (error) {
    await lock.release();
    throw error;
  }
}
