import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandSpec, PackageSpec } from '../../src/core/package.js';
import type { StateData } from '../../src/core/state-types.js';
import type { PackagePlan, PlanAction } from '../../src/plan/plan.js';
import { apply, plan, type ReconcileOptions } from '../../src/reconcile/apply.js';
import { destroy } from '../../src/reconcile/destroy.js';
import type {
  CommandPhase,
  ReconcileEvent,
  ReconcileListener,
  ReconcileSummary,
} from '../../src/reconcile/events.js';
import { FakeAgent, type FakeRun } from './fake-agent.js';

/**
 * The reconcile core in process on a temp SPIN_HOME, with two fake agents (`alpha`, `beta`)
 * sharing one journal in place of the built-in ones, and the embedded broker (no daemon runs
 * for a fresh home). Each test makes its own and calls `cleanup` in `afterEach`.
 */
export interface InProcess {
  home: string;
  statePath: string;
  alpha: FakeAgent;
  beta: FakeAgent;
  /** Every run of both fakes, in the order they started. */
  journal: FakeRun[];
  plan(packages: readonly PackageSpec[]): Promise<PackagePlan[]>;
  apply(
    packages: readonly PackageSpec[],
    options?: Pick<ReconcileOptions, 'targets' | 'excludes' | 'prune' | 'signal' | 'emit'>,
  ): Promise<ReconcileSummary>;
  destroy(names: readonly string[]): Promise<ReconcileSummary>;
  /** The state file as it is on disk now. */
  state(): Promise<StateData>;
  cleanup(): Promise<void>;
}

/** A fresh in-process setup (see InProcess). */
export async function inProcess(): Promise<InProcess> {
  const home = await mkdtemp(join(tmpdir(), 'spin-in-process-'));
  const statePath = join(home, 'state.json');
  const journal: FakeRun[] = [];
  const alpha = new FakeAgent('alpha', { journal });
  const beta = new FakeAgent('beta', { journal });
  const base = { home, statePath, agents: [alpha, beta] };
  return {
    home,
    statePath,
    alpha,
    beta,
    journal,
    plan: async (packages) => (await plan({ ...base, packages })).plans,
    apply: (packages, options = {}) => apply({ ...base, ...options, packages }),
    destroy: (names) => destroy({ ...base, packages: names }),
    state: async () => JSON.parse(await readFile(statePath, 'utf8')) as StateData,
    cleanup: () => rm(home, { recursive: true, force: true }),
  };
}

/**
 * A `make` command of a fake agent: on `alpha` unless `on` says otherwise, its thing named after
 * its id unless `name` says otherwise.
 */
export function make(
  id: string,
  options: { on?: string; needs?: string[]; name?: string; size?: number; retries?: number } = {},
): CommandSpec {
  return {
    id,
    resource: options.on ?? 'alpha',
    action: 'make',
    params: {
      name: options.name ?? id,
      ...(options.size === undefined ? {} : { size: options.size }),
    },
    needs: options.needs ?? [],
    node: 'local',
    timeoutMs: 60_000,
    retries: options.retries ?? 0,
  };
}

/** A package as the loader would give it, read from `<name>.spin.yaml`. */
export function pkg(name: string, ...commands: CommandSpec[]): PackageSpec {
  return { name, file: `${name}.spin.yaml`, commands };
}

/** Each plan item as `id action: reason`, package by package, in plan order. */
export function planLines(plans: readonly PackagePlan[]): string[] {
  return plans.flatMap((p) => p.items.map((i) => `${p.name}/${i.id} ${i.action}: ${i.reason}`));
}

/** The ids of a package's plan items with the given action. */
export function planned(plans: readonly PackagePlan[], name: string, action: PlanAction): string[] {
  const found = plans.find((p) => p.name === name);
  return (found?.items ?? []).filter((i) => i.action === action).map((i) => i.id);
}

/** Each command of a package in the state as `id status`, sorted by id. */
export function recorded(state: StateData, name: string): string[] {
  return Object.entries(state.packages[name]?.commands ?? {})
    .map(([id, record]) => `${id} ${record.status}`)
    .sort();
}

/** A summary with the given counts and zero elsewhere. */
export function summaryOf(counts: Partial<ReconcileSummary>): ReconcileSummary {
  return {
    succeeded: 0,
    failed: 0,
    skipped: 0,
    cancelled: 0,
    unchanged: 0,
    pruned: 0,
    interrupted: false,
    ...counts,
  };
}

/**
 * The events of one apply, collected, with a way to wait for one: `waitFor` resolves at once for
 * an event already seen, else when it comes. Never a sleep.
 */
export class EventLog {
  readonly events: ReconcileEvent[] = [];
  readonly #waiters: { match: (e: ReconcileEvent) => boolean; resolve: () => void }[] = [];

  readonly listener: ReconcileListener = (event) => {
    this.events.push(event);
    for (const waiter of [...this.#waiters]) {
      if (!waiter.match(event)) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  };

  waitFor(match: (e: ReconcileEvent) => boolean): Promise<void> {
    if (this.events.some(match)) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  /** Resolves when command `id` of package `name` reaches `phase`. */
  command(name: string, id: string, phase: CommandPhase): Promise<void> {
    return this.waitFor(
      (e) => e.type === 'command' && e.package === name && e.id === id && e.phase === phase,
    );
  }
}
