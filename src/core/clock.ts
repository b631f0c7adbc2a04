/**
 * Where the broker reads the time. Leases, backoff and TTLs are computed from it, so tests pass a
 * manual clock and move time forward instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };
