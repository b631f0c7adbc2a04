import type { Diagnostic } from '../core/diagnostic.js';
import type { ReconcileEvent, ReconcileSummary } from '../reconcile/events.js';

/** Why a package is being applied: the first look at its file, a save, or the periodic resync. */
export type ApplyReason = 'initial' | 'changed' | 'resync';

/**
 * What `spin watch` reports. The core emits these; `src/cli/watch-renderer.ts` shows them as a
 * live table, timestamped lines, or JSON lines. Every event carries `at` (ms since the epoch).
 * - watching: the directory is (again) being watched, and every file in it has been read (a
 *   save from now on is seen as a change);
 * - missing: the directory is gone; it is picked up again when it comes back;
 * - loaded: a file was read and is valid; invalid: it is not (its package keeps its last good
 *   content, and this is reported again at every resync until the file is fixed);
 * - apply-start / apply-done: one apply of one package; destroy-start / destroyed: `--prune`
 *   undoing a package whose file is gone; unmanaged: a file is gone and its package is left;
 * - reconcile: an event of the underlying apply or destroy, tagged with its package;
 * - error: an apply or destroy failed before it could report a summary;
 * - stopped: the watch ended (signal, or `--once` done).
 */
export type WatchEvent = { at: number } & (
  | {
      type: 'watching';
      dir: string;
      settleMs: number;
      intervalMs: number;
      prune: boolean;
      again: boolean;
    }
  | { type: 'missing'; dir: string }
  | { type: 'loaded'; file: string; package: string }
  | { type: 'invalid'; file: string; package?: string; diagnostics: Diagnostic[] }
  | { type: 'apply-start'; package: string; file: string; reason: ApplyReason }
  | {
      type: 'apply-done';
      package: string;
      file: string;
      reason: ApplyReason;
      summary: ReconcileSummary;
      ms: number;
    }
  | { type: 'unmanaged'; package: string; file: string }
  | { type: 'destroy-start'; package: string; file: string }
  | { type: 'destroyed'; package: string; file: string; summary: ReconcileSummary }
  | { type: 'reconcile'; package: string; event: ReconcileEvent }
  | { type: 'error'; package?: string; file?: string; code: string; message: string }
  | { type: 'stopped'; reason: string }
);

/** The shape of a WatchEvent before it is stamped with `at`. */
export type WatchEventBody = WatchEvent extends infer E
  ? E extends { at: number }
    ? Omit<E, 'at'>
    : never
  : never;

/** Receives watch events; must not throw. */
export type WatchListener = (event: WatchEvent) => void;
