import type { Agent } from '../agents/agent.js';
import type { AdmissionPolicy } from '../agents/emulation/admission.js';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import type { ReconcileListener, ReconcileSummary } from './events.js';
import { emptySummary } from './events.js';
import { inverseRequest } from './inverse-request.js';
import { computePlan, type PackagePlan } from '../plan/plan.js';
import { outcomeChange } from './record-outcome.js';
import type { CommandOutcome, RunRequest } from './run-packages.js';
import { runPackages } from './run-packages.js';
import { refuseForeignClaims } from '../plan/ownership.js';
import { preflightOrRefuse } from '../plan/preflight.js';
import { selectCommands } from '../plan/selection.js';
import { ReconcileSession } from './session.js';
import type { CommandRecord } from '../core/state-types.js';
import { SpinError } from '../core/errors.js';

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
  /** What of the node VM starts may take (see SessionOptions). */
  admission?: AdmissionPolicy;
  /** Agents in place of the built-in ones (see SessionOptions). */
  agents?: readonly Agent[];
  signal?: AbortSignal;
  emit?: ReconcileListener;
}

/** The options of one apply inside an open session. */
export type ApplyRun = Pick<
  ReconcileOptions,
  'packages' | 'targets' | 'excludes' | 'prune' | 'signal' | 'emit'
>;

/**
 * Computes the plan of `packages` against the state and the machine, changing nothing of the
 * machine. Takes the state lock while it reads, so a plan never sees a half-applied state; first
 * settles what a spin that died left (`ReconcileSession.recover`), which may record its results.
 */
export async function plan(options: ReconcileOptions): Promise<PackagePlan[]> {
  const session = await ReconcileSession.open({
    ...options,
    command: 'spin plan',
    onLockWait: (holder) => options.emit?.({ type: 'lock-wait', holder }),
  });
  try {
    // A plan shows what the machine and the file say: what a spin that died left is settled
    // first, and a state from another home is refused.
    await session.recover(options.emit ?? (() => undefined));
    await refuseForeignClaims(options.packages, session.state.data);
    return await computePlan(options.packages, session.state.data, session.host.observe);
  } finally {
    await session.close();
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
  const session = await ReconcileSession.open({
    ...options,
    command: 'spin apply',
    onLockWait: (holder) => options.emit?.({ type: 'lock-wait', holder }),
  });
  try {
    await session.recover(options.emit ?? (() => undefined));
    return await applyIn(session, options);
  } finally {
    await session.close();
  }
}

/** One apply in an open session (see `apply`); several may run at once on different packages. */
export async function applyIn(
  session: ReconcileSession,
  options: ApplyRun,
): Promise<ReconcileSummary> {
  const emit = options.emit ?? (() => undefined);
  await refuseForeignClaims(options.packages, session.state.data);
  const plans = await computePlan(options.packages, session.state.data, session.host.observe);
  emit({ type: 'plan', plans });
  const selected = selectCommands(plans, options.targets ?? [], options.excludes ?? []);
  const summary = emptySummary();
  summary.unchanged = plans.flatMap((p) => p.items).filter((i) => i.action === 'unchanged').length;
  const requests = plans.map((p) => applyRequest(p, selected.get(p.name) ?? new Set()));
  await preflightOrRefuse(session, plans, selected, (message) => {
    emit({ type: 'warning', message });
  });
  await refuseShellWithoutFlag(session, requests);
  const prunes = options.prune === true ? plans.map((p) => pruneRequest(p, session)) : [];
  await runThroughBroker(session, [requests, prunes], summary, options);
  emit({ type: 'done', summary });
  return summary;
}

/**
 * Runs groups of requests through the session's broker, one group after the other (apply, then
 * prune), writing every outcome to the state as it arrives. Does nothing, and opens no broker,
 * when no request has commands.
 */
export async function runThroughBroker(
  session: ReconcileSession,
  groups: RunRequest[][],
  summary: ReconcileSummary,
  options: Pick<ReconcileOptions, 'signal' | 'emit'>,
): Promise<void> {
  const emit = options.emit ?? (() => undefined);
  const signal = options.signal ?? new AbortController().signal;
  if (groups.every((g) => g.every((r) => r.commands.length === 0))) return;
  const state = session.state;
  const saves: Promise<void>[] = [];
  const record = (saved: Promise<void>): void => {
    // Seen by the Promise.all below; a write that fails meanwhile (a full disk) must not end
    // the process as an unhandled rejection first.
    saved.catch(() => undefined);
    saves.push(saved);
  };
  record(state.change({ op: 'serial', serial: state.data.serial + 1 }));
  const broker = await session.broker();
  emit({ type: 'broker', kind: broker.kind });
  try {
    for (const group of groups) {
      if (signal.aborted) break;
      const byName = new Map(
        group.map((r) => [
          r.name,
          { request: r, specs: new Map(r.commands.map((c) => [c.id, c])) },
        ]),
      );
      await runPackages({
        broker,
        statePath: session.statePath,
        agentsFailed: session.agentsFailed,
        requests: group,
        emit,
        signal,
        onOutcome: (outcome) => {
          const entry = byName.get(outcome.package);
          const spec = entry?.specs.get(outcome.id);
          if (entry === undefined || spec === undefined) return;
          count(summary, outcome, entry.request.phase);
          const { phase, file } = entry.request;
          const change = outcomeChange(state.data, outcome, spec, phase, file);
          if (change !== undefined) record(state.change(change));
        },
      });
    }
  } finally {
    if (signal.aborted) {
      summary.interrupted = true;
      emit({ type: 'interrupted', signal: String(signal.reason) });
    }
    await Promise.all(saves);
    // A run ends with its results folded into the state file (the journal only bridges a run).
    await state.fold();
  }
}

/**
 * Refuses, before anything runs, shell commands that the agents of this process would refuse
 * one by one: with the embedded broker they run here, and only with `--allow-shell`. (A daemon
 * decides for itself: it was started with or without the flag.)
 */
async function refuseShellWithoutFlag(
  session: ReconcileSession,
  requests: readonly RunRequest[],
): Promise<void> {
  if (session.allowShell) return;
  const shell = requests.flatMap((r) =>
    r.commands.filter((c) => c.resource === 'shell').map((c) => `${r.name}/${c.id ?? ''}`),
  );
  if (shell.length === 0 || (await session.broker()).kind !== 'embedded') return;
  const listed =
    shell.length > 5
      ? `${shell.slice(0, 5).join(', ')} and ${String(shell.length - 5)} more`
      : shell.join(', ');
  throw new SpinError(
    'shell_disabled',
    `${listed} ${shell.length === 1 ? 'is a shell command, which runs' : 'are shell commands, which run'} only with --allow-shell; nothing was run`,
    {
      details: { commands: shell },
      suggestions: [
        'Run the apply again with --allow-shell to let them run, or start the daemon with --allow-shell.',
      ],
    },
  );
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

function pruneRequest(plan: PackagePlan, session: ReconcileSession): RunRequest {
  const records = plan.items.flatMap((i) =>
    i.action === 'prune' && i.record ? [[i.id, i.record] as [string, CommandRecord]] : [],
  );
  const { request, nothingToUndo } = inverseRequest(
    plan.name,
    plan.file,
    'prune',
    records,
    session.host,
    session.state.data,
  );
  // Records whose action leaves nothing behind (a stop) are simply forgotten.
  for (const id of nothingToUndo) void session.forget(plan.name, id);
  return request;
}
