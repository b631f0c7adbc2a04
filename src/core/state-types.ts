import type { WireError } from './errors.js';

/** How a command ended the last time it ran. */
export type RecordedStatus = 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/**
 * What spin remembers of one command: enough to tell whether the file changed it (`specHash`),
 * to undo it after it left the file (action, params, needs), and what happened last time.
 */
export interface CommandRecord {
  resource: string;
  action: string;
  node: string;
  params: Record<string, unknown>;
  needs: string[];
  specHash: string;
  status: RecordedStatus;
  attempts: number;
  /** The tail of the action's output. */
  output: string;
  error?: WireError;
  /** Why it did not run, for a skipped or cancelled command (`needs 'b', which failed`). */
  reason?: string;
  /** What the action reported it left, for drift detection. */
  observed?: Record<string, unknown>;
  /** The serial of the apply that last ran it. */
  serial: number;
  startedAt?: string;
  finishedAt: string;
}

/** One package as spin last applied it. */
export interface PackageRecord {
  file: string;
  appliedAt: string;
  commands: Record<string, CommandRecord>;
}

/**
 * The state file (`$SPIN_HOME/state.json`). `lineage` is fixed when the file is created, so two
 * unrelated state files are never confused; `serial` rises by one with every apply that ran
 * anything. Every load checks the file against src/reconcile/state-schema.ts, which states these
 * types as a JSON Schema: a change here is a change there (or a new `version`).
 */
export interface StateData {
  format: 'spin-state';
  version: 1;
  lineage: string;
  serial: number;
  /**
   * The number of the last journaled change the file holds (see src/reconcile/state-journal.ts):
   * the changes in `<file>.journal` numbered after it are still to be applied to it.
   */
  journalSeq?: number;
  packages: Record<string, PackageRecord>;
}

/** Who holds a state lock. */
export interface LockHolder {
  pid: number;
  host: string;
  since: string;
  command: string;
}
