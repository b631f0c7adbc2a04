import type { CommandSpec, PackageSpec } from '../core/package.js';
import { openBroker } from '../daemon/open-broker.js';
import { AgentHost } from './agent-host.js';
import type { ReconcileListener, ReconcileSummary } from './events.js';
import { emptySummary } from './events.js';
import { openLockedState, type LockedState } from './locked-state.js';
import { computePlan, type PackagePlan } from './plan.js';
import { recordOutcome } from './record-outcome.js';
import { inverseRequest } from './inverse-request.js';
import type { CommandOutcome, RunRequest } from './run-packages.js';
import { runPackages } from './run-packages.js';
import { selectCommands } from './selection.js';
import type { CommandRecord } from './state-types.js';

/** What `spin apply` and `spin plan` are asked to do. */
export interface ReconcileOptions {
  home: string;
  statePath: string;
  packages: readonly PackageSpec[];
  targets?: readonly string[];
  excludes?: readonly string[];
  prune?: boolean;
  lockTimeoutMs?: number;
  allowShell?: boolean;
  signal?: AbortSignal;
  emit?: ReconcileListener;
}

/**
 * Computes the plan of `packages` against the state and the machine, without changing anything.
 * Takes the state lock while it reads, so a plan never sees a half-applied state.
 */
export async function plan(options: ReconcileOptions): Promise<PackagePlan[]> {
  const locked = await openLockedState(options.statePath, {
    timeoutMs: options.lockTimeoutMs ?? 0,
    command: 'spin plan',
  });
  try {
    const host = new AgentHost(options.home, { allowShell: options.allowShell ?? false });
    return await computePlan(options.packages, locked.state.data, host.observe);
  } finally {
    await locked.release();
  }
}

/**
 * Makes the machine match the packages: plans, runs what the plan says through the broker (the
 * daemon when one answers, otherwise an embedded broker with the built-in agents in this
 * process), writes each result to the state as it arrives, then with `prune` undoes commands
 * that left the files, in reverse dependency order. On `signal` it cancels what has not run,
 * waits for everything to settle, and leaves a consistent state for the next apply.
 */
export async function apply(options: ReconcileOptions): Promise<ReconcileSummary> {
  const emit = options.emit ?? (() => undefined);
  const locked = await openLockedState(options.statePath, {
    timeoutMs: options.lockTimeoutMs ?? 0,
    command: 'spin apply',
  });
  try {
    const host = new AgentHost(options.home, { allowShell: options.allowShell ?? false });
    const plans = await computePlan(options.packages, locked.state.data, host.observe);
    emit({ type: 'plan', plans });
    const selected = selectCommands(plans, options.targets ?? [], options.excludes ?? []);
    const summary = emptySummary();
    summary.unchanged = plans
      .flatMap((p) => p.items)
      .filter((i) => i.action === 'unchanged').length;
    const requests = plans.map((p) => applyRequest(p, selected.get(p.name) ?? new Set()));
    const prunes = options.prune === true ? plans.map((p) => pruneRequest(p, host, locked)) : [];
    await runThroughBroker({ ...options, host, locked, groups: [requests, prunes], summary });
    emit({ type: 'done', summary });
    return summary;
  } finally {
    await locked.release();
  }
}

/**
 * Runs groups of requests through the broker, one group after the other (apply, then prune),
 * writing every outcome to the state as it arrives. Does nothing, and opens no broker, when no
 * request has commands.
 */
export async function runThroughBroker(options: {
  home: string;
  host: AgentHost;
  locked: LockedState;
  groups: RunRequest[][];
  summary: ReconcileSummary;
  signal?: AbortSignal;
  emit?: ReconcileListener;
}): Promise<void> {
  const { host, locked, summary } = options;
  const emit = options.emit ?? (() => undefined);
  const signal = options.signal ?? new AbortController().signal;
  if (options.groups.every((g) => g.every((r) => r.commands.length === 0))) return;
  const state = locked.state;
  state.data.serial += 1;
  const broker = await openBroker({ home: options.home });
  emit({ type: 'broker', kind: broker.kind });
  const stopAgents = broker.kind === 'embedded' ? host.serve(broker) : undefined;
  const saves: Promise<void>[] = [];
  try {
    for (const group of options.groups) {
      if (signal.aborted) break;
      const byName = new Map(group.map((r) => [r.name, r]));
      await runPackages({
        broker,
        requests: group,
        emit,
        signal,
        onOutcome: (outcome) => {
          const request = byName.get(outcome.package);
          const spec = request?.commands.find((c) => c.id === outcome.id);
          if (request === undefined || spec === undefined) return;
          count(summary, outcome, request.phase);
          recordOutcome(state.data, outcome, spec, request.phase, request.file);
          saves.push(state.save());
        },
      });
    }
  } finally {
    if (signal.aborted) {
      summary.interrupted = true;
      emit({ type: 'interrupted', signal: String(signal.reason) });
    }
    await stopAgents?.();
    await broker.close();
    await Promise.all(saves);
    await state.save();
  }
}

function count(
  summary: ReconcileSummary,
  outcome: CommandOutcome,
  phase: RunRequest['phase'],
): void {
  if (phase !== 'apply' && outcome.state === 'succeeded') summary.pruned += 1;
  else summary[outcome.state] += 1;
}

function applyRequest(plan: PackagePlan, run: ReadonlySet<string>): RunRequest {
  const commands = plan.items.flatMap((item) => {
    const command: CommandSpec | undefined = item.command;
    if (command === undefined || !run.has(item.id)) return [];
    // Needs that do not run this time were satisfied by an earlier apply.
    return [
      { ...command, needs: command.needs.filter((n) => run.has(n)), fileNeeds: command.needs },
    ];
  });
  return { name: plan.name, file: plan.file, phase: 'apply', commands };
}

function pruneRequest(plan: PackagePlan, host: AgentHost, locked: LockedState): RunRequest {
  const records = plan.items.flatMap((i) =>
    i.action === 'prune' && i.record ? [[i.id, i.record] as [string, CommandRecord]] : [],
  );
  const { request, nothingToUndo } = inverseRequest(plan.name, plan.file, 'prune', records, host);
  // Records whose action leaves nothing behind (a stop) are simply forgotten.
  const pkg = locked.state.data.packages[plan.name];
  if (pkg) for (const id of nothingToUndo) Reflect.deleteProperty(pkg.commands, id);
  return request;
}
