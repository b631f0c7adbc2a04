import type { Broker } from '../broker/broker.js';
import { nodeWaitMetaKey } from '../broker/node-watch.js';
import type { BrokerEvent, CommandInput, CommandState } from '../broker/broker-types.js';
import { terminalPackageStates } from '../broker/broker-types.js';
import type { WireError } from '../core/errors.js';
import { currentProcess, type ProcessIdentity } from '../core/process-identity.js';
import { SpinError, unreachable } from '../core/errors.js';
import type { ActionOutput } from '../executor/run-action.js';
import type { CommandPhase, ReconcileListener } from './events.js';

/**
 * A package to run through the broker: its name, the file it came from, and the commands that
 * should run (`fileNeeds`: the needs as the file has them, before the ones that do not run this
 * time were dropped).
 */
export interface RunRequest {
  name: string;
  file: string;
  phase: 'apply' | 'prune' | 'destroy';
  commands: (CommandInput & { fileNeeds?: string[] })[];
}

/**
 * What an apply, prune or destroy keeps with each package it submits, so that the next spin can
 * record its results in the state should it die before it does (see ReconcileSession.recover).
 */
export interface PackageMeta {
  statePath: string;
  /** The process that submitted it and records its results while it lives. */
  submitter: ProcessIdentity;
  phase: RunRequest['phase'];
  file: string;
  /** Each command's needs as the file has them. */
  fileNeeds: Record<string, string[]>;
}

/** How one command ended, as recorded in the state file. */
export interface CommandOutcome {
  package: string;
  id: string;
  state: 'succeeded' | 'failed' | 'skipped' | 'cancelled';
  attempts: number;
  startedAt?: number;
  finishedAt: number;
  output: string;
  observed?: Record<string, unknown>;
  error?: WireError;
  reason?: string;
}

/**
 * Submits packages to the broker and follows them to their end, calling `onOutcome` as each
 * command settles (so the state is written after every result) and `emit` on every transition.
 * Subscribes before enqueueing, so no event is missed. When `signal` fires the packages are
 * cancelled through the broker and this still resolves once everything has settled.
 */
export async function runPackages(options: {
  broker: Broker;
  /** The state file the outcomes go to, kept with each package (see `PackageMeta`). */
  statePath: string;
  /** Rejects when the agents that would run these commands failed: stop waiting for them. */
  agentsFailed?: Promise<never>;
  requests: readonly RunRequest[];
  emit: ReconcileListener;
  onOutcome: (outcome: CommandOutcome) => void;
  signal: AbortSignal;
  /** See `ReconcileOptions.nodeWaitMs`: kept with each package for the broker's node watch. */
  nodeWaitMs?: number;
}): Promise<void> {
  const { broker, emit, onOutcome, signal } = options;
  const requests = options.requests.filter((r) => r.commands.length > 0);
  if (requests.length === 0) return;
  const names = new Map<string, string>();
  const started = new Map<string, number>();
  const lastReason = new Map<string, string>();
  const lastPhase = new Map<string, CommandPhase>();
  /** Commands whose end was told: nothing more is said of them. */
  const ended = new Set<string>();
  const open = new Set<string>();
  let settle: () => void = () => undefined;
  const allDone = new Promise<void>((resolve) => {
    settle = resolve;
  });
  let fail: (error: unknown) => void = () => undefined;
  const broken = new Promise<never>((_resolve, reject) => {
    fail = reject;
  });
  // The broker may be lost while nothing waits on `broken`: the rejection waits until then.
  broken.catch(() => undefined);
  options.agentsFailed?.catch((error: unknown) => {
    fail(error);
  });
  /** A request to the broker, or the loss of the broker, whichever comes first. */
  const guard = <T>(request: Promise<T>): Promise<T> => Promise.race([request, broken]);
  /** The broker is gone: what became of the unfinished commands is unknown here. */
  const lostError = (error: SpinError): SpinError => {
    const unfinished = [...open].map((id) => names.get(id) ?? id);
    return new SpinError(
      'unreachable',
      `${error.message}; what became of ${unfinished.length === 0 ? 'the commands' : `the unfinished commands of ${unfinished.join(', ')}`} is unknown`,
      {
        cause: error,
        details: { lost: true, unfinished },
        suggestions: [
          'start the daemon again (spin daemon start) and run the same command: the plan shows what is left',
        ],
      },
    );
  };
  const lost = (error: SpinError): void => {
    fail(lostError(error));
  };

  const onEvent = (event: BrokerEvent): void => {
    const name = names.get(event.packageId);
    if (name === undefined) return;
    if (event.type === 'package') {
      if (terminalPackageStates.has(event.to)) {
        open.delete(event.packageId);
        if (open.size === 0) settle();
      }
      return;
    }
    if (event.type === 'refused') return;
    const phase = phaseOf(event.to);
    if (phase === undefined) return;
    const key = `${event.packageId}/${event.commandId}`;
    // Its end was told already (from a status read, before this event arrived late).
    if (ended.has(key)) return;
    // waiting → ready is still waiting to a person, unless the broker now says why it waits.
    const said = event.reason !== undefined && event.reason !== lastReason.get(key);
    if (lastPhase.get(key) === phase && !(phase === 'waiting' && said)) return;
    lastPhase.set(key, phase);
    if (event.reason !== undefined) lastReason.set(key, event.reason);
    if (phase === 'running') started.set(key, event.at);
    const output = outputOf(event.output);
    emit({
      type: 'command',
      package: name,
      id: event.commandId,
      phase,
      at: event.at,
      attempt: event.attempt,
      ...(event.reason === undefined ? {} : { reason: event.reason }),
      ...(event.error === undefined ? {} : { error: event.error }),
      ...(output === undefined ? {} : { output: output.text }),
    });
    if (
      phase === 'succeeded' ||
      phase === 'failed' ||
      phase === 'skipped' ||
      phase === 'cancelled'
    ) {
      ended.add(key);
      const startedAt = started.get(key);
      onOutcome({
        package: name,
        id: event.commandId,
        state: phase,
        attempts: event.attempt,
        ...(startedAt === undefined ? {} : { startedAt }),
        finishedAt: event.at,
        output: output?.text ?? '',
        ...(output?.observed === undefined ? {} : { observed: output.observed }),
        ...(event.error === undefined ? {} : { error: event.error }),
        ...(event.reason === undefined ? {} : { reason: event.reason }),
      });
    }
  };

  const unsubscribe = await broker.subscribe(onEvent, { onLost: lost });
  let confirmCancel: NodeJS.Timeout | undefined;
  const cancelAll = (): void => {
    if (broker.kind === 'daemon') {
      // The broker settles a cancelled package at once; a daemon that does not say so soon is
      // paused or gone, and a Ctrl-C must not wait for it.
      confirmCancel = setTimeout(() => {
        lost(new SpinError('unreachable', 'the spin daemon did not confirm the cancel within 5 s'));
      }, 5_000);
    }
    for (const id of open) {
      broker.cancel(id).catch((error: unknown) => {
        // A daemon that cannot take the cancel will not report the end either.
        if (error instanceof SpinError && error.code === 'unreachable') lost(error);
      });
    }
  };
  signal.addEventListener('abort', cancelAll, { once: true });
  try {
    const ids: string[] = [];
    for (const request of requests) {
      const meta: PackageMeta = {
        statePath: options.statePath,
        submitter: currentProcess(),
        phase: request.phase,
        file: request.file,
        fileNeeds: Object.fromEntries(
          request.commands.map((c) => [c.id ?? '', c.fileNeeds ?? c.needs]),
        ),
      };
      const bound =
        options.nodeWaitMs === undefined ? {} : { [nodeWaitMetaKey]: options.nodeWaitMs };
      const id = await guard(
        broker.createPackage({ name: request.name, owned: true, meta: { ...meta, ...bound } }),
      );
      names.set(id, request.name);
      open.add(id);
      ids.push(id);
      await guard(
        broker.addCommands(
          id,
          request.commands.map(({ fileNeeds, ...command }) => command),
        ),
      );
      emit({
        type: 'start',
        package: request.name,
        phase: request.phase,
        commands: request.commands.map((c) => ({
          id: c.id ?? '',
          action: c.action,
          resource: c.resource,
          needs: c.needs,
        })),
      });
    }
    try {
      for (const id of ids) {
        if (signal.aborted) await guard(broker.cancel(id));
        else await guard(broker.enqueue(id));
      }
    } catch (error) {
      // Refused (another spin still runs one of these packages): nothing of this run may stay.
      // Unless the broker was lost meanwhile (a Ctrl-C it did not confirm): then nothing waits.
      await guard(Promise.all(ids.map((id) => broker.cancel(id).catch(() => undefined)))).catch(
        () => undefined,
      );
      throw error;
    }
    // A package may have finished before its events arrived: a daemon sends events once its
    // store has synced them, and a status read answers at the commit. Its commands' ends are
    // taken from the status then (an event of the same end that comes later changes nothing).
    for (const id of ids) {
      if (!open.has(id)) continue;
      const status = await guard(broker.status(id));
      if (!terminalPackageStates.has(status.state)) continue;
      for (const command of status.commands) {
        onEvent({
          type: 'command',
          at: command.updatedAt,
          packageId: id,
          commandId: command.id,
          node: command.node,
          resource: command.resource,
          to: command.state,
          attempt: command.attempt,
          ...(command.reason === undefined ? {} : { reason: command.reason }),
          ...(command.error === undefined ? {} : { error: command.error }),
          ...(command.output === undefined ? {} : { output: command.output }),
        });
      }
      open.delete(id);
    }
    if (open.size > 0) await guard(allDone);
  } catch (error) {
    if (error instanceof SpinError && error.code === 'unreachable' && !isLost(error)) {
      throw lostError(error);
    }
    throw error;
  } finally {
    clearTimeout(confirmCancel);
    signal.removeEventListener('abort', cancelAll);
    unsubscribe();
  }
}

/** Whether an error already says that the broker was lost mid-run (see `lostError`). */
function isLost(error: SpinError): boolean {
  return error.details['lost'] === true;
}

function phaseOf(state: CommandState): CommandPhase | undefined {
  switch (state) {
    case 'waiting':
    case 'ready':
      return 'waiting';
    case 'running':
    case 'succeeded':
    case 'failed':
    case 'skipped':
    case 'cancelled':
      return state;
    case 'staged':
      return undefined;
    default:
      return unreachable(state);
  }
}

/** The output an action acked (`{text, observed?}`), or undefined when it is not of that shape. */
export function outputOf(output: unknown): ActionOutput | undefined {
  if (output === null || typeof output !== 'object') return undefined;
  const o = output as Partial<ActionOutput>;
  if (typeof o.text !== 'string') return undefined;
  return o.observed === undefined ? { text: o.text } : { text: o.text, observed: o.observed };
}
