import type { PackageResults } from '../broker/broker-types.js';
import { isGone } from '../core/process-identity.js';
import { openLockedState } from './locked-state.js';
import { finishedChanges } from './record-outcome.js';
import type { PackageMeta } from './run-packages.js';

/** How long the daemon waits for a state's lock to record results in it. */
const lockTimeoutMs = 60_000;

/**
 * Records the results of a finished package in the state it was submitted for, when the spin
 * that submitted it died before it could (the daemon ran the package on): takes that state's
 * lock (a dead holder's lock is taken over), writes what the package finished, and releases it.
 * Does nothing, and returns undefined, while the submitter lives (it records its own results),
 * or for a package not submitted by a reconcile (`spin message`).
 */
export async function recordForDeadSubmitter(
  results: PackageResults,
): Promise<{ statePath: string; recorded: number } | undefined> {
  const meta = results.meta as Partial<PackageMeta> | undefined;
  if (meta?.submitter === undefined || meta.statePath === undefined) return undefined;
  if (meta.fileNeeds === undefined || meta.phase === undefined || meta.file === undefined) {
    return undefined;
  }
  if (!isGone(meta.submitter) || results.finished.length === 0) return undefined;
  const locked = await openLockedState(meta.statePath, {
    timeoutMs: lockTimeoutMs,
    command: 'spin daemon',
  });
  try {
    const { state } = locked;
    const changes = finishedChanges(
      state.data,
      results.name,
      meta as PackageMeta,
      results.finished,
    );
    await Promise.all(changes.map((change) => state.change(change)));
    await state.close();
    return { statePath: meta.statePath, recorded: changes.length };
  } finally {
    await locked.release();
  }
}
