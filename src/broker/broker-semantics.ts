import { displayText, hasBidiControl } from '../core/display-text.js';
import { defaults } from '../core/defaults.js';
import { SpinError } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import type { CommandSpec } from '../core/package.js';
import type { AckResult, CommandInput, CommandState, PackageState } from './broker-types.js';

/**
 * The broker's rules as pure functions: which state a command or package moves to, when a
 * failure is retried, what an expired lease means. The store calls them and keeps no rule of its
 * own. Nothing here does I/O or reads a clock; times come in as arguments.
 */

/** Exponential backoff between attempts: `baseMs · factor^(failures-1)`, capped at `maxMs`. */
export interface BackoffPolicy {
  baseMs: number;
  factor: number;
  maxMs: number;
}

/** Timing defaults of a broker; each can be overridden per store (tests shrink them). */
export interface BrokerTimings {
  /** A lease lasts this long unless renewed (30 s). */
  leaseMs: number;
  /** A never-enqueued package is removed after this long (10 min). */
  packageTtlMs: number;
  /**
   * A finished package (its status, outputs and failures) is kept this long, then removed, so a
   * long-running daemon or `spin watch` does not grow its store without end (7 days).
   */
  retainFinishedMs: number;
  /** Slack past a command's own timeout before the broker counts the attempt as timed out. */
  timeoutGraceMs: number;
  backoff: BackoffPolicy;
}

/** The timings used where nothing else is said. */
export const defaultTimings: BrokerTimings = {
  leaseMs: defaults.leaseMs,
  packageTtlMs: 10 * 60_000,
  retainFinishedMs: 7 * 24 * 3_600_000,
  timeoutGraceMs: 5_000,
  backoff: { baseMs: 1_000, factor: 2, maxMs: 60_000 },
};

/** The wait before the attempt after `failures` failed ones (1 → baseMs). */
export function backoffDelayMs(failures: number, policy: BackoffPolicy): number {
  const delay = policy.baseMs * policy.factor ** Math.max(0, failures - 1);
  return Math.min(policy.maxMs, Math.round(delay));
}

/** What happens to a command after a failed attempt. */
export type FailureDecision =
  { state: 'ready'; availableAt: number; reason: string } | { state: 'failed'; reason: string };

/**
 * Decides retry or failure after the `failures`-th failed attempt: retried with backoff while
 * failures ≤ retries and the error is retryable; failed at once otherwise.
 */
export function decideAfterFailure(input: {
  failures: number;
  retries: number;
  retryable: boolean;
  error: WireError;
  now: number;
  backoff: BackoffPolicy;
}): FailureDecision {
  if (!input.retryable) {
    return { state: 'failed', reason: `${input.error.message} (not retryable)` };
  }
  if (input.failures > input.retries) {
    const tries = input.failures === 1 ? '' : ` after ${String(input.failures)} attempts`;
    return { state: 'failed', reason: `${input.error.message}${tries}` };
  }
  const delay = backoffDelayMs(input.failures, input.backoff);
  return {
    state: 'ready',
    availableAt: input.now + delay,
    reason: `retry ${String(input.failures)}/${String(input.retries)} in ${String(delay)}ms: ${input.error.message}`,
  };
}

/** The error an ack reports, completed when a consumer said only `ok: false`. */
export function errorOfAck(result: AckResult): WireError {
  return result.error ?? { code: 'action_failed', message: 'the action failed without saying why' };
}

/** Whether a failed ack may be retried: errors are retryable unless the consumer says not. */
export function isRetryable(result: AckResult): boolean {
  return result.retryable ?? true;
}

/** The error recorded when an attempt outlives its deadline. */
export function timeoutError(spec: CommandSpec): WireError {
  return {
    code: 'timeout',
    message: `${spec.resource} ${spec.action} did not finish within ${String(spec.timeoutMs)}ms`,
  };
}

/**
 * What a lease that ran out means: before the attempt's deadline, the consumer is gone and the
 * command is delivered again (no retry spent); past it, the attempt timed out.
 */
export function expiryKind(now: number, deadlineAt: number): 'redeliver' | 'timeout' {
  return now >= deadlineAt ? 'timeout' : 'redeliver';
}

/** The reason a skipped command shows: always the command whose failure started the skip. */
export function skipReason(failedId: string): string {
  return `needs '${failedId}', which failed`;
}

/** The state a command enters on enqueue: ready without needs, waiting otherwise. */
export function enqueuedState(needs: readonly string[]): CommandState {
  return needs.length === 0 ? 'ready' : 'waiting';
}

/**
 * The state of an enqueued package from its counts: unfinished while any command is, then
 * cancelled, failed (any failed or skipped command) or succeeded.
 */
export function packageStateOf(counts: {
  started: boolean;
  unfinished: number;
  failedOrSkipped: number;
  cancelled: boolean;
}): PackageState {
  if (counts.cancelled) return 'cancelled';
  if (counts.unfinished > 0) return counts.started ? 'running' : 'enqueued';
  return counts.failedOrSkipped > 0 ? 'failed' : 'succeeded';
}

/**
 * A package's label as the broker keeps it: in Unicode NFC, so that `café` typed either way is
 * one label; refused (`invalid_input`) with control characters or bidirectional controls, which
 * make a label read as another.
 */
export function packageLabel(name: string): string {
  // eslint-disable-next-line no-control-regex -- finding control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name) || hasBidiControl(name)) {
    throw new SpinError(
      'invalid_input',
      `package name '${displayText(name)}' contains control or bidirectional characters`,
    );
  }
  return name.normalize('NFC');
}

/**
 * Ids a package may use: what `needs` and the CLI can name without quoting. Those of a package
 * file, and `undo:<id>` for the undo before a replace.
 */
const commandIdPattern = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,132}$/;

/**
 * Checks commands about to be added to a package that already holds the ids of `existing`, and
 * assigns generated ids (`c<n>`, n counting every command of the package). Needs may point at
 * commands added later; `checkPackageGraph` checks them at enqueue.
 */
export function prepareCommands(
  existing: { has(id: string): boolean; readonly size: number },
  commands: readonly CommandInput[],
): CommandSpec[] {
  const added = new Set<string>();
  const taken = (id: string): boolean => added.has(id) || existing.has(id);
  let counter = existing.size;
  return commands.map((command) => {
    let id = command.id;
    if (id === undefined) {
      do id = `c${String(++counter)}`;
      while (taken(id));
    } else if (!commandIdPattern.test(id)) {
      throw new SpinError('invalid_input', `command id '${id}' is not a valid id`, {
        details: { commandId: id },
      });
    }
    if (taken(id)) {
      throw new SpinError('invalid_input', `the package already has a command '${id}'`, {
        details: { commandId: id },
      });
    }
    added.add(id);
    const needs = command.needs.length < 2 ? [...command.needs] : [...new Set(command.needs)];
    return { ...command, id, needs };
  });
}

/**
 * Checks that every need names a command of the package and that the needs form no cycle;
 * reports the cycle as a path `a → b → a`. Run at enqueue, before anything moves.
 */
export function checkPackageGraph(commands: readonly Pick<CommandSpec, 'id' | 'needs'>[]): void {
  const byId = new Map(commands.map((c) => [c.id, c]));
  for (const command of commands) {
    for (const need of command.needs) {
      if (need === command.id) {
        throw new SpinError('invalid_input', `command '${command.id}' needs itself`);
      }
      if (!byId.has(need)) {
        throw new SpinError(
          'invalid_input',
          `command '${command.id}' needs '${need}', which is not in the package`,
          { details: { commandId: command.id, need } },
        );
      }
    }
  }
  // Depth-first with an explicit stack: a chain of 10,000 needs must not overflow the call stack.
  const done = new Set<string>();
  const onPath = new Set<string>();
  for (const root of commands) {
    if (done.has(root.id)) continue;
    const path: { id: string; next: number }[] = [{ id: root.id, next: 0 }];
    onPath.add(root.id);
    while (path.length > 0) {
      const top = path[path.length - 1];
      if (top === undefined) break;
      const need = byId.get(top.id)?.needs[top.next++];
      if (need === undefined) {
        path.pop();
        onPath.delete(top.id);
        done.add(top.id);
      } else if (onPath.has(need)) {
        const ids = path.map((p) => p.id);
        const cycle = [...ids.slice(ids.indexOf(need)), need].join(' → ');
        throw new SpinError('invalid_input', `the needs form a cycle: ${cycle}`);
      } else if (!done.has(need)) {
        path.push({ id: need, next: 0 });
        onPath.add(need);
      }
    }
  }
}
