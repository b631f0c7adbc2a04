/** The textual form of a duration in a package: `500ms`, `30s`, `2m`, `1h`, or whole seconds. */
export const durationPattern = '^[0-9]{1,9}(ms|s|m|h)$';

/** A duration as `durationPattern` says, but not zero (a period, which must pass). */
export const positiveDurationPattern = '^(?=[0-9]{1,9}(ms|s|m|h)$)0*[1-9]';

const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/**
 * Converts a validated duration (`30s`, or a number of seconds) to milliseconds. Input that the
 * schema would reject returns undefined rather than a guess.
 */
export function durationToMs(value: unknown): number | undefined {
  if (typeof value === 'number')
    return Number.isInteger(value) && value >= 0 ? value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const match = /^([0-9]{1,9})(ms|s|m|h)$/.exec(value);
  if (!match) return undefined;
  return Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
}

/** Renders milliseconds the short way people read durations: `850ms`, `12.3s`, `2m05s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${String(Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${String(minutes)}m${String(seconds).padStart(2, '0')}s`;
}

/** An instant as the time of day, local time: `12:03:10`. */
export function timeOfDay(at: number): string {
  return new Date(at).toTimeString().slice(0, 8);
}
