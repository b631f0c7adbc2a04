import { stat } from 'node:fs/promises';
import type { AdmissionPolicy } from '../core/vm-budget.js';
import { SpinError } from '../core/errors.js';
import type { NatsOptions } from '../daemon/nats-connection.js';
import { expandInputs } from '../load/input-files.js';
import { DirectoryWatcher } from './directory-watcher.js';
import { PathSettler } from './path-settler.js';
import type { WatchListener } from './watch-events.js';
import { WatchReconciler, type WatchOutcome } from './watch-reconciler.js';
import { watchScope } from './watch-scope.js';
import { SessionTarget, type WatchApplyOptions, type WatchTarget } from './watch-target.js';

/** A watch that reconciles against this machine's state, with its own agents (or its daemon). */
export interface LocalWatch {
  home: string;
  statePath: string;
  /** What of the node VM starts may take (see SessionOptions). */
  admission?: AdmissionPolicy;
  nats?: undefined;
}

/**
 * A watch whose packages a fleet's coordinator reconciles against its own state
 * (`spin watch --nats`): nothing of this machine's home is read or written.
 */
export interface RemoteWatch {
  nats: NatsOptions;
}

/** What `spin watch` is asked to do. */
export type WatchOptions = (LocalWatch | RemoteWatch) & {
  /** The directory whose `*.spin.yaml` files are kept applied. */
  dir: string;
  /** How long to wait for the state's lock (the coordinator's, with `nats`) when it is held. */
  lockTimeoutMs?: number;
  allowShell?: boolean;
  /** Destroy the package of a removed file, and undo commands removed from a file. */
  prune?: boolean;
  /** See ReconcileOptions.allowReplace. */
  allowReplace?: boolean;
  /** See ReconcileOptions.nodeWaitMs. */
  nodeWaitMs?: number;
  /** How often every package is planned against the machine and drift repaired (default 5m). */
  intervalMs?: number;
  /** How long a file must stay unchanged before it is read (default 200 ms). */
  settleMs?: number;
  /** Reconcile everything once and return, instead of watching. */
  once?: boolean;
  /** Packages reconciled at the same time, at most (default 8; through a coordinator, one). */
  concurrency?: number;
  maxBytes?: number;
  /** Stops the watch: running applies are cancelled, then everything is closed. */
  signal?: AbortSignal;
  emit?: WatchListener;
};

export const defaultIntervalMs = 5 * 60_000;
export const defaultSettleMs = 200;

/**
 * Keeps the packages below `dir` applied until `signal` fires: on this machine holds one
 * ReconcileSession (the state lock, the agents, the broker) for its whole life, or with `nats`
 * has a fleet's coordinator carry out every apply and destroy; applies every package once, then
 * re-applies a package when its file settles after a change, and every package at each
 * `intervalMs` to repair drift. With `once`, reconciles everything a single time (nothing runs
 * when any file is invalid, as with `spin apply`) and returns. Throws before watching when the
 * directory does not exist or the state is locked; after that, problems are events (a
 * coordinator that cannot be reached too: the package is tried again at its next change or
 * resync). Resolves with the outcome once everything has stopped and the lock is released.
 */
export async function watchPackages(options: WatchOptions): Promise<WatchOutcome> {
  const settleMs = options.settleMs ?? defaultSettleMs;
  const intervalMs = options.intervalMs ?? defaultIntervalMs;
  const prune = options.prune ?? false;
  const emitTo = options.emit ?? (() => undefined);
  const scope =
    options.nats === undefined
      ? watchScope(options.dir, options.home, options.statePath)
      : watchScope(options.dir);
  const info = await stat(scope.dir).catch(() => undefined);
  if (info?.isDirectory() !== true) {
    throw new SpinError('invalid_input', `${options.dir} is not a directory`, {
      suggestions: ['spin watch takes a directory of *.spin.yaml files'],
    });
  }
  const target = await openTarget(options, emitTo);
  const stopping = new AbortController();
  const onAbort = (): void => {
    stopping.abort(options.signal?.reason);
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted === true) onAbort();
  const reconciler = new WatchReconciler({
    target,
    scope,
    prune,
    concurrency: target.parallel ? (options.concurrency ?? 8) : 1,
    signal: stopping.signal,
    emit: emitTo,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
  });
  const listFiles = async (): Promise<string[]> =>
    (await expandInputs([scope.dir])).files.filter((f) => scope.includes(f));
  const watching = (again: boolean): void => {
    reconciler.emit({ type: 'watching', dir: scope.dir, settleMs, intervalMs, prune, again });
  };

  let outcome: WatchOutcome;
  try {
    if (options.once === true) {
      const act = await reconciler.readAll(await listFiles(), 'initial');
      watching(false);
      if (reconciler.invalidFiles.length === 0) {
        act();
        reconciler.releaseOrphans();
        await reconciler.idle();
      }
      outcome = await reconciler.stop();
    } else {
      outcome = await watchUntilStopped({
        reconciler,
        scope,
        settleMs,
        intervalMs,
        stopping: stopping.signal,
        listFiles,
        watching,
      });
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    await target.close();
  }
  reconciler.emit({
    type: 'stopped',
    reason: stopping.signal.aborted ? String(stopping.signal.reason) : 'done',
  });
  return outcome;
}

/** This machine's session (the state locked, what a spin that died left settled), or the fleet. */
async function openTarget(options: WatchOptions, emit: WatchListener): Promise<WatchTarget> {
  const apply: WatchApplyOptions = {
    prune: options.prune ?? false,
    allowReplace: options.allowReplace ?? false,
    ...(options.nodeWaitMs === undefined ? {} : { nodeWaitMs: options.nodeWaitMs }),
  };
  if (options.nats !== undefined) {
    const { RemoteTarget } = await import('./remote-target.js');
    return new RemoteTarget(options.nats, {
      ...apply,
      allowShell: options.allowShell ?? false,
      ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
    });
  }
  return SessionTarget.open({
    ...apply,
    home: options.home,
    statePath: options.statePath,
    once: options.once === true,
    ...(options.lockTimeoutMs === undefined ? {} : { lockTimeoutMs: options.lockTimeoutMs }),
    ...(options.allowShell === undefined ? {} : { allowShell: options.allowShell }),
    ...(options.admission === undefined ? {} : { admission: options.admission }),
    recovered: (event) => {
      if (event.type !== 'recovered') return;
      const name = event.cancelled[0]?.name ?? '';
      emit({ at: Date.now(), type: 'reconcile', package: name, event });
    },
  });
}

async function watchUntilStopped(context: {
  reconciler: WatchReconciler;
  scope: ReturnType<typeof watchScope>;
  settleMs: number;
  intervalMs: number;
  stopping: AbortSignal;
  listFiles: () => Promise<string[]>;
  watching: (again: boolean) => void;
}): Promise<WatchOutcome> {
  const { reconciler, scope, stopping } = context;
  const settler = new PathSettler({
    settleMs: context.settleMs,
    onSettled: (file) => void reconciler.read(file),
  });
  let armed = 0;
  const onPresence = async (present: boolean): Promise<void> => {
    if (!present) {
      reconciler.emit({ type: 'missing', dir: scope.dir });
      // Its files are gone too, unless the directory is back before they settle.
      for (const file of reconciler.files) settler.touch(file);
      return;
    }
    const first = armed === 0;
    armed += 1;
    const listed = await context.listFiles();
    const seen = new Set(listed);
    await Promise.all(listed.map((file) => reconciler.read(file, first ? 'initial' : 'changed')));
    for (const file of reconciler.files) if (!seen.has(file)) settler.touch(file);
    if (first) reconciler.releaseOrphans();
    // Announced once armed and every file present is read: a later save is a change.
    context.watching(!first);
  };
  const directory = new DirectoryWatcher({
    scope,
    onChange: (file) => {
      settler.touch(file);
    },
    onPresence: (present) => {
      void onPresence(present).catch(report);
    },
    onError: report,
  });
  function report(error: Error): void {
    reconciler.emit({ type: 'error', code: 'watch', message: error.message });
  }
  const resync = setInterval(() => {
    reconciler.resync();
    void directory.check();
  }, context.intervalMs);
  try {
    if (!stopping.aborted) await directory.start();
    if (!stopping.aborted) {
      await new Promise<void>((resolve) => {
        stopping.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    clearInterval(resync);
    settler.close();
    await directory.close();
  }
  return reconciler.stop();
}
