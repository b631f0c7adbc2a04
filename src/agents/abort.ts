import { SpinError } from '../core/errors.js';

/**
 * The SpinError for an action stopped by its AbortSignal: `timeout` when the signal's reason is a
 * TimeoutError (AbortSignal.timeout) or a SpinError `timeout` (the executor's deadline),
 * `cancelled` otherwise. Both are retryable: doing the same thing again, given time, may succeed.
 */
export function abortedError(
  signal: AbortSignal,
  what: string,
  details?: Record<string, unknown>,
): SpinError {
  const reason: unknown = signal.reason;
  const timedOut =
    reason instanceof SpinError
      ? reason.code === 'timeout'
      : reason instanceof Error && reason.name === 'TimeoutError';
  return new SpinError(
    timedOut ? 'timeout' : 'cancelled',
    reason instanceof SpinError
      ? `${what} was stopped: ${reason.message}.`
      : `${what} was stopped: the command ${timedOut ? 'timed out' : 'was cancelled'}.`,
    {
      retryable: true,
      ...(details === undefined ? {} : { details }),
      ...(reason === undefined ? {} : { cause: reason }),
    },
  );
}

/** Throws `abortedError` when `signal` has aborted; the SpinError form of `throwIfAborted`. */
export function throwIfAborted(signal: AbortSignal, what: string): void {
  if (signal.aborted) throw abortedError(signal, what);
}
