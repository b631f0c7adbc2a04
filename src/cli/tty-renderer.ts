import { Listr, type DefaultRenderer, type ListrTaskWrapper, type SimpleRenderer } from 'listr2';
import { formatDuration } from '../core/duration.js';
import type {
  CommandPhase,
  ReconcileEvent,
  ReconcileListener,
  ReconcileSummary,
} from '../reconcile/events.js';
import {
  failureOutput,
  indent,
  lockWaitLine,
  recoveredLines,
  summaryLine,
} from './reconcile-lines.js';
import type { Renderer, Sink } from './reconcile-lines.js';

/** Packages with more commands than this show one line of counts instead of a line each. */
const maxLines = 25;
/** Failed and skipped commands named under such a line, at most. */
const maxNamed = 50;

type Task = ListrTaskWrapper<unknown, typeof DefaultRenderer, typeof SimpleRenderer>;

interface CommandView {
  phase: CommandPhase;
  startedAt?: number;
  at: number;
  reason?: string;
  output?: string;
  changed: () => void;
}

/** Live tasks in a terminal (listr2): a line per command, or per package when it is large. */
export function ttyRenderer(sink: Sink, verb: string): Renderer {
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
        // listr2 would end the process on Ctrl-C (exit 127) before the apply could cancel what
        // has not run and record it: the command's own handler (interruptSignal) does that.
        registerSignalListeners: false,
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
            task.title = view.reason?.startsWith('waiting for node')
              ? `${id} ${view.reason}`
              : `${id} waiting`;
            return;
          case 'running':
            task.title = `${id} running`;
            return;
          case 'succeeded':
            task.title = `${id} succeeded${took}`;
            resolve();
            return;
          case 'failed':
            task.title = `${id} failed${took}`;
            reject(
              new Error(
                `${view.reason ?? 'failed'}${view.output ? `\n${indent(view.output)}` : ''}`,
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
        const skips: string[] = [];
        for (const key of keys) {
          const view = views.get(key);
          if (view === undefined) continue;
          const id = key.slice(start.package.length + 1);
          counts.set(view.phase, (counts.get(view.phase) ?? 0) + 1);
          if (view.phase === 'running') running.push(id);
          if (view.phase === 'failed') {
            const output = view.output === undefined ? '' : `\n${indent(view.output, 5)}`;
            failures.push(`${id} failed: ${view.reason ?? 'failed'}${output}`);
          }
          if (view.phase === 'skipped') skips.push(`${id} skipped: ${view.reason ?? 'skipped'}`);
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
          // The line of counts names no command: what failed, and what it skipped, is named here.
          const named = [...failures, ...skips];
          const shown = named.slice(0, maxNamed);
          if (named.length > maxNamed) {
            shown.push(
              `… and ${String(named.length - maxNamed)} more (spin status ${start.package})`,
            );
          }
          if (failures.length > 0) reject(new Error(shown.join('\n')));
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
        const output = event.phase === 'failed' ? failureOutput(event) : event.output;
        if (output !== undefined) view.output = output;
        view.changed();
        return;
      }
      case 'lock-wait':
        sink.err(lockWaitLine(event.holder));
        return;
      case 'warning':
        sink.err(`warning: ${event.message}`);
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
