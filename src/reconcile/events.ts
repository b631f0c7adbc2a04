import type { WireError } from '../core/errors.js';
import type { RecoveryReport } from '../broker/broker-types.js';
import type { PackagePlan } from '../plan/plan.js';
import type { LockHolder } from './state-lock.js';

/** Where a command stands during an apply, as the progress display shows it. */
export type CommandPhase = 'waiting' | 'running' | 'succeeded' | 'failed' | 'skipped' | 'cancelled';

/**
 * What apply, prune and destroy report while they work. The core emits these; `src/cli` renders
 * them as listr2 progress, plain timestamped lines, or JSON lines.
 */
export type ReconcileEvent =
  | { type: 'plan'; plans: PackagePlan[] }
  | { type: 'broker'; broker: 'daemon' | 'embedded' }
  | {
      type: 'recovered';
      cancelled: RecoveryReport['cancelled'];
      /** Results of those packages written to the state now. */
      recorded: number;
    }
  | { type: 'lock-wait'; holder: LockHolder }
  /** Something the run may meet, said before it runs (a package whose VMs do not fit). */
  | { type: 'warning'; message: string }
  | {
      type: 'start';
      package: string;
      phase: 'apply' | 'prune' | 'destroy';
      commands: { id: string; action: string; resource: string; needs: string[] }[];
    }
  | {
      type: 'command';
      package: string;
      id: string;
      phase: CommandPhase;
      at: number;
      attempt: number;
      reason?: string;
      error?: WireError;
      output?: string;
    }
  | { type: 'interrupted'; signal: string }
  | { type: 'done'; summary: ReconcileSummary };

/** Counts of how commands ended. */
export interface ReconcileSummary {
  succeeded: number;
  failed: number;
  skipped: number;
  cancelled: number;
  unchanged: number;
  pruned: number;
  interrupted: boolean;
}

/** Receives events; must not throw. */
export type ReconcileListener = (event: ReconcileEvent) => void;

/** A summary with nothing counted yet. */
export function emptySummary(): ReconcileSummary {
  return {
    succeeded: 0,
    failed: 0,
    skipped: 0,
    cancelled: 0,
    unchanged: 0,
    pruned: 0,
    interrupted: false,
  };
}
