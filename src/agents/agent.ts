import type { ActionSpec } from './action-spec.js';

/**
 * The directories an agent may touch, all under one `SPIN_HOME`. Each agent confines the paths a
 * package names to one of these roots (see confined-path.ts).
 */
export interface AgentRoots {
  /** `$SPIN_HOME` itself. */
  home: string;
  /** Storage volumes and images: `$SPIN_HOME/images`. */
  images: string;
  /** One directory per VM: `$SPIN_HOME/vms/<id>/`. */
  vms: string;
  /** Working directories of shell commands: `$SPIN_HOME/work`. */
  work: string;
}

/**
 * Which delivery of which command an action carries out. Programs an action starts are recorded
 * under it while they run, so that a later attempt of the same command (package id + command id)
 * ends first whatever this one left running (see attempt-record.ts).
 */
export interface AttemptIdentity {
  packageId: string;
  commandId: string;
  attemptId: string;
}

/** What an action is given besides its params: its deadline, its roots, a progress channel. */
export interface ActionContext {
  /**
   * Aborted when the command's timeout passes, it is cancelled, or its lease is lost; actions
   * stop, end the programs they started, and clean up.
   */
  signal: AbortSignal;
  roots: AgentRoots;
  /** Reports one line of progress (`copied 512 MiB of 1024 MiB`); never required for success. */
  progress: (line: string) => void;
  /**
   * Receives the stdout and stderr of a program the action runs, chunk by chunk as it arrives,
   * to be kept with the attempt (`spin logs`); absent where nothing keeps it.
   */
  output?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
  /** The attempt this run carries out, when it runs for a broker lease (not for observations). */
  attempt?: AttemptIdentity;
}

/**
 * What is there now for one command's params, for drift detection: `present` says whether what
 * the action brings about holds now (a volume exists, a VM runs; for a removal or a stop, the
 * thing is gone), `details` what was seen. A command whose observation is not present has
 * drifted, and apply runs it again.
 */
export interface Observation {
  present: boolean;
  details: Record<string, unknown>;
}

/**
 * Asks the agent that owns a command what is there now; undefined where its action cannot tell
 * (a command of another node, whose machine this one cannot look at).
 * The plan calls it for commands the state says succeeded.
 */
export type Observer = (command: {
  resource: string;
  action: string;
  params: Record<string, unknown>;
  node?: string;
}) => Promise<Observation | undefined>;

/** The result of a successful action: a short line for people and, when cheap, what it left. */
export interface ActionResult {
  output: string;
  observed?: Observation;
}

/**
 * One action of an agent: its spec (schema and inverse name, from specs.ts) with the code that
 * carries it out. `run` is idempotent: running it twice leaves the same result and succeeds.
 * Failures are thrown as SpinError with a stable code and `retryable`. `inverseParams` maps this
 * action's params to the params of `spec.inverse`, so prune and destroy can undo it.
 */
export interface AgentAction {
  spec: ActionSpec;
  run: (params: Record<string, unknown>, ctx: ActionContext) => Promise<ActionResult>;
  observe?: (params: Record<string, unknown>, ctx: ActionContext) => Promise<Observation>;
  inverseParams?: (params: Record<string, unknown>) => Record<string, unknown>;
}

/** An agent: the one resource it owns and its actions, keyed by action name. */
export interface Agent {
  resource: string;
  actions: ReadonlyMap<string, AgentAction>;
  /**
   * Called when a runner starts to consume this agent's queue under `roots`: begins, in the
   * background, work that the first action would otherwise wait for (the emulation agent decides
   * its accelerator). Returns at once and never throws; nothing waits for it.
   */
  prepare?: (roots: AgentRoots) => void;
  /**
   * Work the agent does in the background for as long as a runner serves its queue under `roots`
   * (the emulation agent supervises its VMs): started when the runner starts, ended by the
   * function returned, which the runner awaits as it stops. Never throws.
   */
  serve?: (roots: AgentRoots) => () => Promise<void>;
}

/**
 * The observation of an undoing action (remove, delete, stop) from the one of the action it
 * undoes: what it brings about holds when the other's does not.
 */
export function absenceOf(
  observe: (params: Record<string, unknown>, ctx: ActionContext) => Promise<Observation>,
): (params: Record<string, unknown>, ctx: ActionContext) => Promise<Observation> {
  return async (params, ctx) => {
    const seen = await observe(params, ctx);
    return { present: !seen.present, details: seen.details };
  };
}
