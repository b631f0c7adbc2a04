import { durationToMs } from '../core/duration.js';
import { SpinError } from '../core/errors.js';
import type { LogLine } from '../executor/attempt-log.js';
import type { LogChunk } from '../reconcile/command-logs.js';

/**
 * A chunk as text: console text as the guest wrote it; an attempt's lines one per line, what spin
 * says of the attempt (its start and end) after `-- `.
 */
export function logChunkText(chunk: LogChunk): string {
  if (chunk.kind === 'console') return chunk.text;
  return chunk.lines.map((line) => `${lineText(line)}\n`).join('');
}

function lineText(line: LogLine): string {
  switch (line.tag) {
    case 'out':
    case 'err':
    case 'msg':
      return line.text;
    case 'note':
      return `-- ${line.text}`;
    case 'cut':
      return `-- … ${line.text} earlier lines of this attempt were not kept`;
  }
}

/** What `spin logs -f` says on stderr when the console it follows begins anew. */
export function replacedNotice(chunk: LogChunk): string | undefined {
  return chunk.kind === 'console' && chunk.replaced === true
    ? `-- ${chunk.path} began anew (the VM started again); following it`
    : undefined;
}

/**
 * The instant `--since` names: a duration back from `now` (`10m`, `2h`, or whole seconds) or a
 * time (`2026-11-30T04:00:00Z`, `2026-11-30`); anything else is a usage error (exit 2).
 */
export function sinceOf(value: string, now: number): number {
  const ms = durationToMs(/^\d+$/.test(value) ? Number(value) : value);
  if (ms !== undefined) return now - ms;
  const at = /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isFinite(at)) return at;
  throw new SpinError(
    'usage',
    `--since: '${value}' is neither a duration (30s, 10m, 2h) nor a time (2026-11-30T04:00:00Z)`,
  );
}
