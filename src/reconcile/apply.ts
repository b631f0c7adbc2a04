import type { Agent } from '../agents/agent.js';
import type { AdmissionPolicy, ReportedBudgets } from '../core/vm-budget.js';
import type { CommandSpec, PackageSpec } from '../core/package.js';
import type { ReconcileListener, ReconcileSummary } from './events.js';
import { emptySummary } from './events.js';
import { inverseRequest } from './inverse-request.js';
import { computePlan, type PackagePlan } from '../plan/plan.js';
import { isUndoId, outcomeChange, undoIdOf } from './record-outcome.js';
import type { CommandOutcome, RunRequest } from './run-packages.js';
import { runPackages } from './run-packages.js';
import { refuseForeignClaims } from '../plan/ownership.js';
import { preflightOrRefuse } from '../plan/preflight.js';
import { selectCommands } from '../plan/selection.js';
import { refuseDataLoss, refuseUnmanaged } from '../plan/plan-refusals.js';
import { ReconcileSession } from './session.js';
import type { CommandRecord } from '../core/state-types.js';
import { SpinError } from '../core/errors.js';
import { readFile } from 'node:fs/promises';
import { sha256 } from '../load/load-package-file.js';
import { plansOf, type PlanDocument } from '../plan/plan-document.js';
import type { StateData } from '../core/state-types.js';
import { AgentHost } from '../executor/agent-host.js';
import { emptyState, readState } from './state-file.js';
import { lockHolderOf, type LockHolder } from './state-lock.js';

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
  /**
   * Let a replace undo what holds data (an image, a volume with entries); without it, such a
   * plan is refused before anything runs, unless the command says `replace: allow`.
   */
  allowReplace?: boolean;
  /**
   * How long a command may wait for its node to have an agent (`--node-wait`); past it, it fails
   * with `node_unavailable` and what needs it is skipped. Unbounded when absent.
   */
  nodeWaitMs?: number;
  /** What of the node VM starts may take (see SessionOptions). */
  admission?: AdmissionPolicy;
  /** What the coordinator knows of other nodes' room for VMs (see SessionOptions). */
  reported?: ReportedBudgets;
  /** Agents in place of the built-in ones (see SessionOptions). */
  agents?: readonly Agent[];
  signal?: AbortSignal;
  emit?: ReconcileListener;
}

/** The options of one apply inside an open session. */
export type ApplyRun = Pick<
  ReconcileOptions,
  'packages' | 'targets' | 'excludes' | 'prune' | 'allowReplace' | 'nodeWaitMs' | 'signal' | 'emit'
>;

/** A plan and what it was made against. */
export interface PlanResult {
  plans: PackagePlan[];
  /** The state as read (null: no state file yet). */
  state: StateData | null;
  /** Who held the state's lock while the plan read it: it may have changed since. */
  changing?: LockHolder;
}

/**
 * Computes the plan of `packages` against the state and the machine, changing nothing of either.
 * Takes no lock: it reads the state file with its journal as `spin status` does, so a plan works
 * while an apply or a watch runs, and says so (`changing`). What a spin that died left is settled
 * by the next apply, not here; its plan may then show more to do than that apply will.
 */
export async function plan(
  options: Pick<ReconcileOptions, 'home' | 'statePath' | 'packages' | 'agents'>,
): Promise<PlanResult> {
  const changing = await lockHolderOf(options.statePath);
  const state = await readState(options.statePath);
  const data = state ?? emptyState();
  await refuseForeignClaims(options.packages, data);
  const host = new AgentHost(options.home, {
    allowShell: false,
    ...(options.agents === undefined ? {} : { agents: options.agents }),
  });
  const plans = await computePlan(options.packages, data, host.observe);
  return { plans, state, ...(changing === undefined ? {} : { changing }) };
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

/**
 * Carries out a saved plan (`spin plan --out FILE`) exactly: the changes it lists, with its
 * planning options, and nothing else. Refused with `state_conflict` (exit 3), before anything
 * runs, when a package file no longer hashes as it did or the state's lineage or serial changed
 * since the plan was made (another apply ran, or a spin that died was settled): the plan would
 * no longer say what apply does.
 */
export async function applySaved(
  options: Omit<ReconcileOptions, 'packages' | 'targets' | 'excludes' | 'prune'> & {
    plan: PlanDocument;
    planPath: string;
  },
): Promise<ReconcileSummary> {
  const doc = options.plan;
  await refuseChangedFiles(doc, options.planPath);
  const session = await ReconcileSession.open({
    ...options,
    command: 'spin apply',
    onLockWait: (holder) => options.emit?.({ type: 'lock-wait', holder }),
  });
  try {
    await session.recover(options.emit ?? (() => undefined));
    refuseChangedState(doc, session.state.data, options.planPath);
    return await runPlans(session, plansOf(doc, session.state.data), {
      targets: doc.options.targets,
      excludes: doc.options.excludes,
      prune: doc.options.prune,
      ...(options.allowReplace === undefined ? {} : { allowReplace: options.allowReplace }),
      ...(options.nodeWaitMs === undefined ? {} : { nodeWaitMs: options.nodeWaitMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.emit === undefined ? {} : { emit: options.emit }),
    });
  } finally {
    await session.close();
  }
}

/** Refuses a saved plan whose package files changed, or are gone, since it was made. */
async function refuseChangedFiles(doc: PlanDocument, planPath: string): Promise<void> {
  const changed: string[] = [];
  for (const pkg of doc.packages) {
    let text: string | undefined;
    try {
      text = await readFile(pkg.file, 'utf8');
    } catch {
      changed.push(`${pkg.file} (package ${pkg.name}) cannot be read`);
      continue;
    }
    if (pkg.sha256 !== null && sha256(text) !== pkg.sha256)
      changed.push(`${pkg.file} (package ${pkg.name}) changed`);
  }
  if (changed.length === 0) return;
  throw new SpinError(
    'state_conflict',
    `the plan ${planPath} is stale: ${changed.join('; ')} since it was made; nothing was run`,
    {
      details: { stale: 'files', files: changed },
      suggestions: [
        'Make a new plan from the files as they are (spin plan <paths> --out FILE), review it, and apply that.',
      ],
    },
  );
}

/** Refuses a saved plan made against another state, or against this one before it changed. */
function refuseChangedState(doc: PlanDocument, state: StateData, planPath: string): void {
  const fresh = doc.state.lineage === null && state.serial === 0;
  if (fresh || (doc.state.lineage === state.lineage && doc.state.serial === state.serial)) return;
  const what =
    doc.state.lineage !== null && doc.state.lineage !== state.lineage
      ? `it was made against another state (lineage ${doc.state.lineage}; this one is ${state.lineage})`
      : `the state changed since it was made (serial ${String(doc.state.serial)}, now ${String(state.serial)})`;
  throw new SpinError('state_conflict', `the plan ${planPath} is stale: ${what}; nothing was run`, {
    details: {
      stale: 'state',
      planned: doc.state,
      now: { lineage: state.lineage, serial: state.serial },
    },
    suggestions: [
      'Make a new plan against the state as it is (spin plan <paths> --out FILE), review it, and apply that.',
    ],
  });
}

/** One apply in an open session (see `apply`); several may run at once on different packages. */
export async function applyIn(
  session: ReconcileSession,
  options: ApplyRun,
): Promise<ReconcileSummary> {
  await refuseForeignClaims(options.packages, session.state.data);
  const plans = await computePlan(options.packages, session.state.data, session.host.observe);
  return runPlans(session, plans, options);
}

/**
 * Carries out `plans`, made against the session's state as it is now: what applyIn does once it
 * has planned, and what `spin apply FILE` does with a saved plan.
 */
export async function runPlans(
  session: ReconcileSession,
  plans: PackagePlan[],
  options: Omit<ApplyRun, 'packages'>,
): Promise<ReconcileSummary> {
  const emit = options.emit ?? (() => undefined);
  emit({ type: 'plan', plans });
  const selected = selectCommands(plans, options.targets ?? [], options.excludes ?? []);
  const summary = emptySummary();
  summary.unchanged = plans.flatMap((p) => p.items).filter((i) => i.action === 'unchanged').length;
  await refuseUnmanaged(plans, selected);
  await refuseDataLoss(plans, selected, options.allowReplace === true);
  await preflightOrRefuse(session, plans, selected, (message) => {
    emit({ type: 'warning', message });
  });
  const requests = plans.map((p) =>
    applyRequest(p, selected.get(p.name) ?? new Set(), session, options.allowReplace === true),
  );
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
  options: Pick<ReconcileOptions, 'signal' | 'emit' | 'nodeWaitMs'>,
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
  emit({ type: 'broker', broker: broker.kind });
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
        ...(options.nodeWaitMs === undefined ? {} : { nodeWaitMs: options.nodeWaitMs }),
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
  else if (isUndoId(outcome.id) && outcome.state === 'succeeded')
    return; // counted with its command
  else summary[outcome.state] += 1;
}

/**
 * The commands apply runs of a package: those of `run`, each waiting only for needs that run
 * too (the others were satisfied by an earlier apply). A replaced command first has what it
 * made undone, by a command `undo:<id>` that it waits for; the undos run in reverse dependency
 * order, as destroy's would (a VM stops before its disk is deleted), and an undo that fails
 * skips the command and what needs it.
 */
function applyRequest(
  plan: PackagePlan,
  run: ReadonlySet<string>,
  session: ReconcileSession,
  allowReplace: boolean,
): RunRequest {
  const replaced = new Set(
    plan.items.filter((i) => i.action === 'replace' && run.has(i.id)).map((i) => i.id),
  );
  const commands: RunRequest['commands'] = plan.items.flatMap((item) => {
    const command: CommandSpec | undefined = item.command;
    if (command === undefined || !run.has(item.id)) return [];
    const needs = command.needs.filter((n) => run.has(n));
    if (replaced.has(item.id)) needs.push(undoIdOf(item.id));
    return [{ ...command, needs, fileNeeds: command.needs }];
  });
  if (replaced.size === 0) return { name: plan.name, file: plan.file, phase: 'apply', commands };
  const records = plan.items.flatMap((i) =>
    i.record === undefined ? [] : [[i.id, i.record] as [string, CommandRecord]],
  );
  const { request } = inverseRequest(
    plan.name,
    plan.file,
    'apply',
    records,
    session.host,
    session.state.data,
    replaced,
  );
  const items = new Map(plan.items.map((i) => [i.id, i]));
  const undos = request.commands.map((undo) => {
    const item = items.get(undo.id ?? '');
    const allowed = allowReplace || item?.command?.replace === 'allow';
    // What holds data is undone only when that was allowed (see refuseDataLoss): then fully.
    const force = item?.losesData === true && allowed && acceptsForce(session, undo);
    return {
      ...undo,
      id: undoIdOf(undo.id ?? ''),
      needs: undo.needs.map(undoIdOf),
      params: force ? { ...undo.params, force: true } : undo.params,
    };
  });
  return { name: plan.name, file: plan.file, phase: 'apply', commands: [...undos, ...commands] };
}

/** Whether the action of `command` takes a `force` param (remove_volume of a volume with files). */
function acceptsForce(
  session: ReconcileSession,
  command: { resource: string; action: string },
): boolean {
  const properties = session.host.action(command.resource, command.action)?.spec.params[
    'properties'
  ] as Record<string, unknown> | undefined;
  return properties !== undefined && Object.hasOwn(properties, 'force');
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
