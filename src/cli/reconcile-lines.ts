import { outputFormatVersion } from '../core/output-schemas.js';
import type { RecoveryReport } from '../broker/broker-types.js';
import type { WireError } from '../core/errors.js';
import type { LockHolder } from '../reconcile/state-lock.js';
import type { ReconcileListener, ReconcileSummary } from '../reconcile/events.js';

/** How progress is shown: live tasks in a terminal, a line per transition, or JSON lines. */
export type OutputMode = 'tty' | 'plain' | 'json';

/** Writes a line to stdout or stderr. */
export interface Sink {
  out(line: string): void;
  err(line: string): void;
}

/**
 * A sink that writes the lines given to it in one synchronous run (the events of one broker
 * commit) as one write, at the end of that run: an apply of 10,000 commands prints 30,000 lines,
 * and a write each cost more than the rest of printing them. A line to stderr first writes what
 * stdout holds, so the two keep their order; a microtask, not a later turn, so nothing is held
 * past the code that follows (an exit included).
 */
export function batchedSink(sink: Sink): Sink {
  let held: string[] = [];
  const flush = (): void => {
    if (held.length === 0) return;
    const lines = held;
    held = [];
    sink.out(lines.join('\n'));
  };
  return {
    out(line) {
      if (held.push(line) === 1) queueMicrotask(flush);
    },
    err(line) {
      flush();
      sink.err(line);
    },
  };
}

/** A renderer: the listener to hand to the core, and `finish` to await before exiting. */
export interface Renderer {
  listener: ReconcileListener;
  finish(): Promise<void>;
}

/** The last `lines` lines of a program's output, indented under the command that printed them. */
export function indent(text: string, lines = 20): string {
  return text
    .trimEnd()
    .split('\n')
    .slice(-lines)
    .map((l) => `    | ${l}`)
    .join('\n');
}

/**
 * The output of a command that failed, to show under it: what it printed (a program's stdout and
 * stderr travel in the error's details), or the console of a VM that did not start.
 */
export function failureOutput(event: { output?: string; error?: WireError }): string | undefined {
  const details = event.error?.details ?? {};
  for (const text of [event.output, details['output'], details['console']]) {
    if (typeof text === 'string' && text.trim() !== '') return text;
  }
  return undefined;
}

/** What a command waiting for the state lock says, naming who holds it. */
export function lockWaitLine(holder: LockHolder): string {
  return `waiting for the state lock, held by ${holder.command} (pid ${String(holder.pid)} on ${holder.host}) since ${holder.since}`;
}

/**
 * What a command says about the packages of an earlier spin that died, which it cancelled when it
 * opened the broker: nothing of them runs later.
 */
export function recoveredLines(cancelled: RecoveryReport['cancelled'], recorded: number): string[] {
  const lines = cancelled.map((c) => {
    const what = `${c.owner.command} (pid ${String(c.owner.pid)}, started ${new Date(c.createdAt).toISOString()})`;
    const unknown =
      c.interrupted.length === 0
        ? ''
        : `; it was running ${c.interrupted.join(', ')}, whose outcome is unknown`;
    return `recovered from an interrupted ${what}: cancelled ${String(c.notStarted)} command${c.notStarted === 1 ? '' : 's'} of ${c.name} that had not started${unknown}`;
  });
  if (recorded > 0) {
    lines.push(
      `recorded ${String(recorded)} result${recorded === 1 ? '' : 's'} it had not written to the state`,
    );
  }
  return lines;
}

/** The closing line of an apply, destroy or prune. */
export function summaryLine(s: ReconcileSummary, verb: string): string {
  const ran = s.succeeded + s.failed + s.skipped + s.cancelled + s.pruned;
  if (ran === 0) {
    return `Nothing to do: ${String(s.unchanged)} command${s.unchanged === 1 ? '' : 's'} up to date.`;
  }
  const parts = s.succeeded > 0 || s.pruned === 0 ? [`${String(s.succeeded)} succeeded`] : [];
  if (s.failed > 0) parts.push(`${String(s.failed)} failed`);
  if (s.skipped > 0) parts.push(`${String(s.skipped)} skipped`);
  if (s.cancelled > 0) parts.push(`${String(s.cancelled)} cancelled`);
  if (s.pruned > 0) parts.push(`${String(s.pruned)} undone`);
  if (s.unchanged > 0) parts.push(`${String(s.unchanged)} unchanged`);
  const how = s.interrupted ? 'interrupted' : s.failed > 0 ? 'finished with failures' : 'complete';
  return `${verb} ${how}: ${parts.join(', ')}.`;
}

/**
 * One event as a line of `--output json` (schemas/output/event.schema.json): the event with the
 * format version and kind every document carries.
 */
export function eventLine(event: { type: string }): string {
  return JSON.stringify({ format_version: outputFormatVersion, ...event, kind: 'event' });
}
