import { Listr, type DefaultRenderer, type ListrTaskWrapper, type SimpleRenderer } from 'listr2';

/** Packages with more commands than this show one line of counts instead of a line each. */
const maxLines = 25;

type Task = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;
import { formatDuration } from '../core/duration.js';
import type { RecoveryReport } from '../broker/broker-types.js';
import type { LockHolder } from '../reconcile/state-lock.js';
import type {
  CommandPhase,
  ReconcileEvent,
  ReconcileListener,
  ReconcileSummary,
} from '../reconcile/events.js';

/** How progress is shown: live tasks in a terminal, a line per transition, or JSON lines. */
export type OutputMode = 'tty' | 'plain' | 'json';

/** Writes a line to stdout or stderr. */
export interface Sink {
  out(line: string): void;
  err(line: string): void;
}

/** A renderer: the listener to hand to the core, and `finish` to await before exiting. */
export interface Renderer {
  listener: ReconcileListener;
  finish(): Promise<void>;
}

/** The renderer for a mode. */
export function createRenderer(mode: OutputMode, sink: Sink, verb = 'Apply'): Renderer {
  switch (mode) {
    case 'json':
      return {
        listener: (e) => {
          sink.out(JSON.stringify(e));
        },
        finish: () => Promise.resolve(),
      };
    case 'plain':
      return plainRenderer(sink, verb);
    case 'tty':
      return ttyRenderer(sink, verb);
  }
}

function plainRenderer(sink: Sink, verb: string): Renderer {
  const started = new Map<string, number>();
  const listener: ReconcileListener = (event) => {
    const stamp = new Date().toISOString();
    switch (event.type) {
      case 'broker':
        sink.out(
          `${stamp} broker: ${event.kind === 'daemon' ? 'the spin daemon' : 'embedded (no daemon runs)'}`,
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
        sink.out(
          `${stamp} ${key} ${describePhase(event.phase, event.attempt)}${took}${detail(event)}`,
        );
        if (event.phase === 'failed' && event.output) sink.out(indent(event.output));
        return;
      }
      case 'lock-wait':
        sink.err(`${stamp} ${lockWaitLine(event.holder)}`);
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

interface CommandView {
  phase: CommandPhase;
  startedAt?: number;
  at: number;
  reason?: string;
  output?: string;
  changed: () => void;
}

function ttyRenderer(sink: Sink, verb: string): Renderer {
  const views = new Map<string, CommandView>();
  const lists: Promise<unknown>[] = [];
  let batch: Extract<ReconcileEvent, { type: 'start' }>[] = [];
  let summary: ReconcileSummary | undefined;

  const flush = (): void => {
    const packages = batch;
    batch = [];
    const list = new Listr<unknown, 'default', 'simple'>(
      packages.map((start) => ({
        title: `${start.package} (${start.phase}, ${String(start.commands.length)} commands)`,
        task: (_: unknown, task: Task) =>
          start.commands.length > maxLines
            ? followPackage(start, task)
            : task.newListr(
                start.commands.map((command) => ({
                  title: `${command.id} ${command.resource}.${command.action}`,
                  task: (_ctx: unknown, sub: Task) =>
                    follow(`${start.package}/${command.id}`, command.id, sub),
                })),
                { concurrent: true, exitOnError: false },
              ),
      })),
      {
        concurrent: true,
        exitOnError: false,
        rendererOptions: { collapseSubtasks: false, collapseErrors: false },
      },
    );
    lists.push(list.run().catch(() => undefined));
  };

  const follow = (key: string, id: string, task: Task): Promise<void> =>
    new Promise((resolve, reject) => {
      const view = views.get(key);
      if (view === undefined) {
        resolve();
        return;
      }
      const update = (): void => {
        const took =
          view.startedAt === undefined ? '' : ` ${formatDuration(view.at - view.startedAt)}`;
        switch (view.phase) {
          case 'waiting':
            task.title = `${id} waiting`;
            return;
          case 'running':
            task.title = `${id} running`;
            return;
          case 'succeeded':
            task.title = `${id} succeeded${took}`;
            resolve();
            return;
          case 'failed':
            reject(
              new Error(
                `${id} failed${took}: ${view.reason ?? 'failed'}${view.output ? `\n${indent(view.output)}` : ''}`,
              ),
            );
            return;
          case 'skipped':
          case 'cancelled':
            task.skip(`${id} ${view.phase}: ${view.reason ?? ''}`);
            resolve();
            return;
        }
      };
      view.changed = update;
      update();
    });

  /**
   * A package too large to show a line per command: one line with the counts and what runs now,
   * and each failure printed as it happens.
   */
  const followPackage = (
    start: Extract<ReconcileEvent, { type: 'start' }>,
    task: Task,
  ): Promise<void> =>
    new Promise((resolve, reject) => {
      const keys = start.commands.map((c) => `${start.package}/${c.id}`);
      const update = (): void => {
        const counts = new Map<CommandPhase, number>();
        const running: string[] = [];
        const failures: string[] = [];
        for (const key of keys) {
          const view = views.get(key);
          if (view === undefined) continue;
          const id = key.slice(start.package.length + 1);
          counts.set(view.phase, (counts.get(view.phase) ?? 0) + 1);
          if (view.phase === 'running') running.push(id);
          if (view.phase === 'failed') failures.push(`${id} failed: ${view.reason ?? 'failed'}`);
        }
        const n = (phase: CommandPhase): number => counts.get(phase) ?? 0;
        const settled = n('succeeded') + n('failed') + n('skipped') + n('cancelled');
        const parts = [`${String(n('succeeded'))}/${String(keys.length)} succeeded`];
        if (n('failed') > 0) parts.push(`${String(n('failed'))} failed`);
        if (n('skipped') > 0) parts.push(`${String(n('skipped'))} skipped`);
        if (n('cancelled') > 0) parts.push(`${String(n('cancelled'))} cancelled`);
        if (running.length > 0) parts.push(`running ${running.slice(0, 3).join(', ')}`);
        task.title = `${start.package} (${start.phase}): ${parts.join(', ')}`;
        if (settled === keys.length) {
          if (failures.length > 0) reject(new Error(failures.join('\n')));
          else resolve();
        }
      };
      for (const key of keys) {
        const view = views.get(key);
        if (view !== undefined) view.changed = update;
      }
      update();
    });

  const listener: ReconcileListener = (event) => {
    switch (event.type) {
      case 'start':
        for (const c of event.commands) {
          views.set(`${event.package}/${c.id}`, {
            phase: 'waiting',
            at: Date.now(),
            changed: () => undefined,
          });
        }
        if (batch.length === 0) setImmediate(flush);
        batch.push(event);
        return;
      case 'command': {
        const view = views.get(`${event.package}/${event.id}`);
        if (view === undefined) return;
        view.phase = event.phase;
        view.at = event.at;
        if (event.phase === 'running') view.startedAt = event.at;
        const reason = event.error?.message ?? event.reason;
        if (reason !== undefined) view.reason = reason;
        if (event.output !== undefined) view.output = event.output;
        view.changed();
        return;
      }
      case 'lock-wait':
        sink.err(lockWaitLine(event.holder));
        return;
      case 'recovered':
        for (const line of recoveredLines(event.cancelled, event.recorded)) sink.err(line);
        return;
      case 'interrupted':
        sink.err('interrupted: cancelling what has not run; the state stays consistent');
        return;
      case 'done':
        summary = event.summary;
        return;
      case 'plan':
      case 'broker':
        return;
    }
  };
  return {
    listener,
    finish: async () => {
      await new Promise((resolve) => setImmediate(resolve));
      await Promise.all(lists);
      if (summary) sink.out(summaryLine(summary, verb));
    },
  };
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

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .slice(-20)
    .map((l) => `    | ${l}`)
    .join('\n');
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
