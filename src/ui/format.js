// Small formatters shared by the views.

/** `1.2s`, `340ms`, `2m 5s`. */
export function duration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

/** A time of day for an epoch ms or an ISO string. */
export function clock(at) {
  if (at === undefined || at === null) return '—';
  return new Date(at).toLocaleTimeString([], { hour12: false });
}

/** The states in the order the views list them. */
export const stateOrder = [
  'running',
  'failed',
  'skipped',
  'cancelled',
  'waiting',
  'ready',
  'staged',
  'succeeded',
];
