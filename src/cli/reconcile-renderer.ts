import { formatDuration } from '../core/duration.js';
import type { CommandPhase, ReconcileEvent, ReconcileListener } from '../reconcile/events.js';
import {
  batchedSink,
  failureOutput,
  indent,
  lockWaitLine,
  recoveredLines,
  summaryLine,
} from './reconcile-lines.js';
import type { OutputMode, Renderer, Sink } from './reconcile-lines.js';
import { eventLine } from './reconcile-lines.js';

/**
 * The renderer for a mode. The terminal's (listr2) is imported only when it is asked for: plain
 * and JSON output, what CI and scripts use, start without it.
 */
export async function createRenderer(
  mode: OutputMode,
  sink: Sink,
  verb = 'Apply',
): Promise<Renderer> {
  switch (mode) {
    case 'json': {
      const lines = batchedSink(sink);
      return {
        listener: (e) => {
          lines.out(eventLine(e));
        },
        finish: () => Promise.resolve(),
      };
    }
    case 'plain':
      return plainRenderer(batchedSink(sink), verb);
    case 'tty': {
      const { ttyRenderer } = await import('./tty-renderer.js');
      return ttyRenderer(sink, verb);
    }
  }
}

function plainRenderer(sink: Sink, verb: string): Renderer {
  const started = new Map<string, number>();
  const listener: ReconcileListener = (event) => {
    const stamp = new Date().toISOString();
    switch (event.type) {
      case 'broker':
        sink.out(
          `${stamp} broker: ${event.broker === 'daemon' ? 'the spin daemon' : 'embedded (no daemon runs)'}`,
        );
        return;
      case 'start':
        sink.out(
          `${stamp} ${event.package}: ${event.phase} ${String(event.commands.length)} command${event.commands.length === 1 ? '' : 's'}`,
        );
        return;
      case 'command': {
        const key = `${event.package}/${event.id}`;
        if (event.phase === 'running') started.set(key, event.at);
        const took =
          started.has(key) && event.phase !== 'running' && event.phase !== 'waiting'
            ? ` in ${formatDuration(event.at - (started.get(key) ?? event.at))}`
            : '';
        const phase =
          event.phase === 'waiting' && event.reason?.startsWith('waiting for node') === true
            ? event.reason
            : describePhase(event.phase, event.attempt);
        sink.out(`${stamp} ${key} ${phase}${took}${detail(event)}`);
        const output = event.phase === 'failed' ? failureOutput(event) : undefined;
        if (output !== undefined) sink.out(indent(output));
        return;
      }
      case 'lock-wait':
        sink.err(`${stamp} ${lockWaitLine(event.holder)}`);
        return;
      case 'warning':
        sink.err(`${stamp} warning: ${event.message}`);
        return;
      case 'recovered':
        for (const line of recoveredLines(event.cancelled, event.recorded))
          sink.err(`${stamp} ${line}`);
        return;
      case 'interrupted':
        sink.err(`${stamp} interrupted: cancelling what has not run; the state stays consistent`);
        return;
      case 'done':
        sink.out(summaryLine(event.summary, verb));
        return;
      case 'plan':
        return;
    }
  };
  return { listener, finish: () => Promise.resolve() };
}

function describePhase(phase: CommandPhase, attempt: number): string {
  return phase === 'running' && attempt > 1 ? `running (attempt ${String(attempt)})` : phase;
}

function detail(event: Extract<ReconcileEvent, { type: 'command' }>): string {
  if (event.phase === 'failed')
    return `: ${event.error?.message ?? event.reason ?? 'failed'}${event.error ? ` [${event.error.code}]` : ''}`;
  if (event.phase === 'skipped' || event.phase === 'cancelled')
    return event.reason ? `: ${event.reason}` : '';
  if (event.phase === 'succeeded' && event.output) return `: ${firstLine(event.output)}`;
  return '';
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}
