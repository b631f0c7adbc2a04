import { relative } from 'node:path';
import { formatDiagnostic } from '../core/diagnostic.js';
import { formatDuration, timeOfDay } from '../core/duration.js';
import type { WatchEvent, WatchListener } from '../watch/watch-events.js';
import type { OutputMode, Sink } from './reconcile-lines.js';
import { eventLine, recoveredLines, summaryLine } from './reconcile-lines.js';

/** Where a watch renderer writes: lines, and in a terminal raw text for redrawing. */
export interface WatchSink extends Sink {
  write(text: string): void;
}

/** A watch renderer: the listener to hand to the core, and `finish` before exiting. */
export interface WatchRenderer {
  listener: WatchListener;
  finish(): void;
}

/** The renderer of `spin watch` for an output mode. */
export function createWatchRenderer(mode: OutputMode, sink: WatchSink): WatchRenderer {
  switch (mode) {
    case 'json':
      return {
        listener: (e) => {
          sink.out(eventLine(e));
        },
        finish: () => undefined,
      };
    case 'plain':
      return plainWatchRenderer(sink);
    case 'tty':
      return ttyWatchRenderer(sink);
  }
}

/** One line of text for an event, or undefined for events a person need not see. */
export function describeWatchEvent(event: WatchEvent, dir = ''): string | undefined {
  const name = (file: string): string => (dir === '' ? file : relative(dir, file) || file);
  switch (event.type) {
    case 'watching':
      return `${event.again ? 'watching again' : 'watching'} ${event.dir} (settle ${formatDuration(event.settleMs)}, resync every ${formatDuration(event.intervalMs)}${event.prune ? ', prune' : ''})`;
    case 'missing':
      return `${event.dir} is gone; waiting for it to come back`;
    case 'loaded':
      return `${event.package}: loaded ${name(event.file)}`;
    case 'invalid': {
      const kept =
        event.package === undefined ? '' : ` (${event.package} keeps its last good content)`;
      return [
        `${name(event.file)} is invalid${kept}:`,
        ...event.diagnostics.map((d) => `    ${formatDiagnostic(d)}`),
      ].join('\n');
    }
    case 'apply-start':
      return `${event.package}: apply (${event.reason})`;
    case 'apply-done':
      return `${event.package}: ${summaryLine(event.summary, 'apply')} (${formatDuration(event.ms)})`;
    case 'unmanaged':
      return `${event.package}: ${name(event.file)} is gone; the package is no longer managed and is left as it is (--prune destroys it)`;
    case 'destroy-start':
      return `${event.package}: ${name(event.file)} is gone; destroying the package`;
    case 'destroyed':
      return `${event.package}: ${summaryLine(event.summary, 'destroy')}`;
    case 'error':
      return `${event.package === undefined ? '' : `${event.package}: `}error: ${event.message} [${event.code}]`;
    case 'stopped':
      return `stopped (${event.reason})`;
    case 'reconcile': {
      const e = event.event;
      if (e.type === 'interrupted')
        return `${event.package}: interrupted, cancelling what has not run`;
      if (e.type === 'recovered') return recoveredLines(e.cancelled, e.recorded).join('\n');
      if (e.type === 'warning') return `${event.package}: warning: ${e.message}`;
      if (e.type !== 'command' || e.phase === 'waiting' || e.phase === 'running') return undefined;
      const why = e.error?.message ?? e.reason;
      return `${e.package}/${e.id} ${e.phase}${why === undefined ? '' : `: ${why}`}`;
    }
  }
}

function plainWatchRenderer(sink: WatchSink): WatchRenderer {
  let dir = '';
  return {
    listener: (event) => {
      if (event.type === 'watching') dir = event.dir;
      const text = describeWatchEvent(event, dir);
      if (text === undefined) return;
      const line = `${new Date(event.at).toISOString()} ${text}`;
      if (event.type === 'error' || event.type === 'invalid') sink.err(line);
      else sink.out(line);
    },
    finish: () => undefined,
  };
}

interface Row {
  file: string;
  status: string;
  detail: string;
  at: number;
}

/** A table of every package, redrawn in place (at most ten times a second), and the last notes. */
function ttyWatchRenderer(sink: WatchSink): WatchRenderer {
  const rows = new Map<string, Row>();
  const invalid = new Map<string, string>();
  const notes: string[] = [];
  let header = '';
  let dir = '';
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;
  const row = (pkg: string, file: string): Row => {
    const r = rows.get(pkg) ?? { file, status: 'loaded', detail: '', at: Date.now() };
    rows.set(pkg, r);
    return r;
  };
  const draw = (): void => {
    timer = undefined;
    const lines = [header, ''];
    const width = Math.max(7, ...[...rows.keys()].map((k) => k.length));
    lines.push(`${'PACKAGE'.padEnd(width)}  ${'STATUS'.padEnd(12)}  SINCE     DETAIL`);
    for (const [pkg, r] of [...rows].sort(([a], [b]) => a.localeCompare(b))) {
      const since = timeOfDay(r.at);
      lines.push(`${pkg.padEnd(width)}  ${r.status.padEnd(12)}  ${since}  ${r.detail}`);
    }
    for (const [file, problem] of invalid) lines.push(`! ${relative(dir, file)}: ${problem}`);
    if (notes.length > 0) lines.push('', ...notes);
    // Lines longer than the terminal would wrap and spoil the count of lines to redraw.
    const columns = process.stdout.columns > 0 ? process.stdout.columns : 120;
    const fitted = lines.map((l) => (l.length > columns ? `${l.slice(0, columns - 1)}…` : l));
    const clear = drawn > 0 ? `\x1b[${String(drawn)}A\x1b[0J` : '';
    sink.write(`${clear}${fitted.join('\n')}\n`);
    drawn = lines.length;
  };
  const later = (): void => {
    timer ??= setTimeout(draw, 100);
  };
  const note = (text: string): void => {
    notes.push(`${timeOfDay(Date.now())} ${text}`);
    if (notes.length > 5) notes.shift();
  };
  const listener: WatchListener = (event) => {
    switch (event.type) {
      case 'watching':
        dir = event.dir;
        header = `spin watch: ${describeWatchEvent(event) ?? ''} — Ctrl-C to stop`;
        break;
      case 'missing':
        note(describeWatchEvent(event) ?? '');
        break;
      case 'loaded':
        invalid.delete(event.file);
        row(event.package, event.file);
        break;
      case 'invalid': {
        const d = event.diagnostics[0];
        invalid.set(
          event.file,
          d === undefined
            ? 'invalid'
            : `${String(d.line)}:${String(d.column)} ${d.path === '' ? '' : `${d.path}: `}${d.message}${event.diagnostics.length > 1 ? ` (+${String(event.diagnostics.length - 1)} more)` : ''}`,
        );
        break;
      }
      case 'apply-start':
        Object.assign(row(event.package, event.file), {
          status: `applying`,
          detail: event.reason,
          at: event.at,
        });
        break;
      case 'apply-done': {
        const s = event.summary;
        Object.assign(row(event.package, event.file), {
          status: s.failed > 0 ? 'failed' : s.interrupted ? 'interrupted' : 'ok',
          detail: summaryLine(s, 'apply'),
          at: event.at,
        });
        break;
      }
      case 'destroy-start':
        Object.assign(row(event.package, event.file), {
          status: 'destroying',
          detail: '',
          at: event.at,
        });
        break;
      case 'destroyed':
      case 'unmanaged':
        rows.delete(event.package);
        note(describeWatchEvent(event, dir) ?? '');
        break;
      case 'error':
        if (event.package !== undefined)
          Object.assign(row(event.package, event.file ?? ''), {
            status: 'error',
            detail: event.message,
            at: event.at,
          });
        else note(describeWatchEvent(event) ?? '');
        break;
      case 'reconcile': {
        const e = event.event;
        if (e.type === 'command' && e.phase === 'running') {
          Object.assign(row(event.package, ''), { detail: `${e.id} running` });
        }
        if (e.type === 'warning') note(describeWatchEvent(event) ?? '');
        break;
      }
      case 'stopped':
        note(describeWatchEvent(event) ?? '');
        break;
    }
    later();
  };
  return {
    listener,
    finish: () => {
      if (timer !== undefined) clearTimeout(timer);
      draw();
    },
  };
}
