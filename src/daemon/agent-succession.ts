import { readFileSync, rmSync } from 'node:fs';
import { SpinError } from '../core/errors.js';
import { currentProcess, isGone } from '../core/process-identity.js';
import type { ProcessIdentity } from '../core/process-identity.js';
import { writeDurably } from './node-registry.js';

/** Who serves one queue of a node from one `$SPIN_HOME`: the holder name it leases under. */
interface QueueHolder extends ProcessIdentity {
  holder: string;
}

/**
 * Takes one queue of a node for this process, recorded in `file` (beside the agent's outbox),
 * and returns the holder name of the process that served it before, when that process is gone
 * for sure: its lease may then be ended at once instead of running out (`succeeds` of a lease
 * request), which is what a restarted agent asks. A process that still serves the queue from
 * this home is refused (`state_conflict`): one queue runs one command at a time, so a second
 * agent would only wait, and would make the first one's leases look abandoned.
 */
export function takeQueue(file: string, holder: string): { succeeds?: string; leave: () => void } {
  const self = currentProcess();
  const found = readHolder(file);
  // A record of another host (a home copied over, a renamed machine) cannot be checked here.
  const before = found?.host === self.host ? found : undefined;
  if (before !== undefined && before.pid !== self.pid && !isGone(before)) {
    throw new SpinError(
      'state_conflict',
      `an agent already serves this queue from this home: pid ${String(before.pid)} (${before.holder})`,
      { details: { pid: before.pid, holder: before.holder } },
    );
  }
  const record: QueueHolder = { ...self, holder };
  writeDurably(file, JSON.stringify(record) + '\n');
  return {
    ...(before === undefined || before.holder === holder ? {} : { succeeds: before.holder }),
    leave: () => {
      if (readHolder(file)?.holder === holder) rmSync(file, { force: true });
    },
  };
}

function readHolder(file: string): QueueHolder | undefined {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as Partial<QueueHolder>;
    if (
      typeof value.holder === 'string' &&
      typeof value.pid === 'number' &&
      typeof value.host === 'string' &&
      typeof value.startTime === 'number'
    ) {
      return value as QueueHolder;
    }
  } catch {
    // None, or torn by a crash before its rename: nothing is known of an earlier holder.
  }
  return undefined;
}
