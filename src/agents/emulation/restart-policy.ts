import { defaults } from '../../core/defaults.js';
import { durationToMs } from '../../core/duration.js';
import { SpinError } from '../../core/errors.js';
import type { Params } from '../params.js';
import { isFailure, type ExitCause } from './vm-exit.js';

/** When a VM is restarted: never, after a failure (not after the guest powered off), or always. */
export type RestartPolicyName = 'no' | 'on-failure' | 'always';

/** What happens once `attempts` restarts were made within `interval`: give up, or wait it out. */
export type RestartMode = 'fail' | 'delay';

/** A start's `restart` block, with every default filled in and durations in milliseconds. */
export interface RestartPolicy {
  policy: RestartPolicyName;
  attempts: number;
  intervalMs: number;
  delayMs: number;
  maxDelayMs: number;
  mode: RestartMode;
}

function bad(field: string, expected: string): SpinError {
  return new SpinError('invalid_input', `Parameter 'restart.${field}' must be ${expected}.`, {
    details: { field: `restart.${field}` },
  });
}

function durationField(block: Params, field: string, fallback: number): number {
  if (block[field] === undefined) return fallback;
  const ms = durationToMs(block[field]);
  if (ms === undefined) throw bad(field, 'a duration');
  return ms;
}

function oneOf<T extends string>(
  block: Params,
  field: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const value = block[field];
  if (value === undefined) return fallback;
  if (!allowed.includes(value as T)) throw bad(field, `one of ${allowed.join(', ')}`);
  return value as T;
}

/**
 * The restart policy of a start's params (`restart`, checked again as agents check what a queue
 * brings: see params.ts), with `defaults.restart` for what it leaves out.
 */
export function restartPolicyOf(params: Params): RestartPolicy {
  const value = params['restart'] ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) throw bad('', 'a mapping');
  const block = value as Params;
  const fallback = defaults.restart;
  const attempts = block['attempts'] ?? fallback.attempts;
  if (
    typeof attempts !== 'number' ||
    !Number.isInteger(attempts) ||
    attempts < 0 ||
    attempts > 1000
  )
    throw bad('attempts', 'an integer from 0 to 1000');
  return {
    policy: oneOf(block, 'policy', ['no', 'on-failure', 'always'], fallback.policy),
    attempts,
    intervalMs: durationField(block, 'interval', fallback.intervalMs),
    delayMs: durationField(block, 'delay', fallback.delayMs),
    maxDelayMs: durationField(block, 'max_delay', fallback.maxDelayMs),
    mode: oneOf(block, 'mode', ['fail', 'delay'], fallback.mode),
  };
}

/** Whether `policy` restarts a VM whose qemu ended for `cause`. */
export function restartsAfter(policy: RestartPolicy, cause: ExitCause): boolean {
  switch (policy.policy) {
    case 'no':
      return false;
    case 'on-failure':
      return isFailure(cause);
    case 'always':
      return true;
  }
}

/**
 * What to do after an exit that the policy restarts: restart after `waitMs`; or, the attempts of
 * the interval being used up, give up (mode fail) or wait until the interval has passed (mode
 * delay, `waitMs` to then).
 */
export type RestartDecision =
  | { kind: 'restart'; waitMs: number }
  | { kind: 'wait-interval'; waitMs: number }
  | { kind: 'give-up' };

/** The restarts of `window` (times, in ms) that still count at `now`: those within the interval. */
export function restartsInWindow(
  policy: RestartPolicy,
  window: readonly number[],
  now: number,
): number[] {
  // An interval of 0 holds no restart: the number of attempts is then unlimited.
  return window.filter((at) => now - at < policy.intervalMs);
}

/**
 * Decides the next restart from the restarts made within the interval (`window`, times in ms).
 * The wait is `delay`, doubled for each restart in the window, at most `max_delay` (never less
 * than `delay`), less up to a fifth at random (`random` in [0, 1)): VMs that failed together do
 * not all restart at the same instant, and none waits longer than its configured backoff.
 */
export function decideRestart(
  policy: RestartPolicy,
  window: readonly number[],
  now: number,
  random: number,
): RestartDecision {
  const recent = restartsInWindow(policy, window, now);
  if (policy.intervalMs > 0 && recent.length >= policy.attempts) {
    if (policy.mode === 'fail') return { kind: 'give-up' };
    const oldest = recent[0] ?? now;
    return { kind: 'wait-interval', waitMs: Math.max(0, oldest + policy.intervalMs - now) };
  }
  const ceiling = Math.max(policy.delayMs, policy.maxDelayMs);
  const backoff = Math.min(ceiling, policy.delayMs * 2 ** recent.length);
  return { kind: 'restart', waitMs: Math.round(backoff * (1 - 0.2 * random)) };
}
