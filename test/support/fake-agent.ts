import { defineAction } from '../../src/agents/action-spec.js';
import type {
  ActionContext,
  ActionResult,
  Agent,
  AgentAction,
  Observation,
} from '../../src/agents/agent.js';
import { absenceOf } from '../../src/agents/agent.js';
import { SpinError } from '../../src/core/errors.js';

/** A promise with its settling functions in hand. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: Error) => void;
}

/** A new deferred; its promise never counts as an unhandled rejection. */
export function deferred<T = void>(): Deferred<T> {
  let resolve: (value: T) => void = () => undefined;
  let reject: (error: Error) => void = () => undefined;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

/**
 * One run of a fake action held by the test: `started` resolves once the run has begun (it then
 * waits), `release` lets it succeed, `fail` makes it throw. A run whose context is aborted
 * (cancel, shutdown) stops waiting and fails with the abort's reason, as a real action does.
 */
export interface Gate {
  readonly started: Promise<void>;
  release(): void;
  fail(error: SpinError): void;
}

/** One run of a fake action as it started: which action, on which thing, with which params. */
export interface FakeRun {
  resource: string;
  action: string;
  name: string;
  params: Record<string, unknown>;
}

/** How the runs of one thing fail until `heal`. */
export interface FakeFailure {
  retryable: boolean;
  message?: string;
}

interface HeldRun {
  started: Deferred<void>;
  done: Deferred<void>;
}

/**
 * An agent behind the `Agent` contract that the test controls, for driving plan, apply, prune
 * and destroy in process. It owns `resource` and has two actions on things named by the param
 * `name`: `make` puts the thing into the fake's in-memory `world` (its inverse is `unmake`,
 * called with `{ name }` only, so a test sees `inverseParams` at work) and `unmake` takes it out.
 * Both observe the world, so `drift(name)` (the thing vanished behind spin's back) makes the plan
 * call `make` drifted. The test can hold a run until it releases it (`hold`), make every run of a
 * thing fail (`fail`, `heal`), count runs per action and thing (`calls`), and read how many runs
 * are in progress now (`running`) and at most so far (`peak`). Runs are appended to `journal`,
 * which several fakes may share to show the order across queues.
 */
export class FakeAgent implements Agent {
  readonly resource: string;
  readonly actions: ReadonlyMap<string, AgentAction>;
  /** The things made and not unmade (or drifted away). */
  readonly world = new Set<string>();
  /** Every run, in the order runs started (shared when given to several fakes). */
  readonly journal: FakeRun[];
  readonly #holds = new Map<string, HeldRun[]>();
  readonly #failures = new Map<string, FakeFailure>();
  readonly #calls = new Map<string, number>();
  #running = 0;
  #peak = 0;

  constructor(resource: string, options: { journal?: FakeRun[] } = {}) {
    this.resource = resource;
    this.journal = options.journal ?? [];
    const properties = { name: { type: 'string', minLength: 1 }, size: { type: 'integer' } };
    const observeMade = (params: Record<string, unknown>): Promise<Observation> => {
      const name = nameOf(params);
      return Promise.resolve({ present: this.world.has(name), details: { name } });
    };
    const make: AgentAction = {
      spec: defineAction({
        resource,
        action: 'make',
        description: 'Makes a thing in the fake world.',
        properties,
        required: ['name'],
        inverse: 'unmake',
      }),
      run: (params, ctx) => this.#run('make', params, ctx),
      observe: observeMade,
      inverseParams: (params) => ({ name: nameOf(params) }),
    };
    const unmake: AgentAction = {
      spec: defineAction({
        resource,
        action: 'unmake',
        description: 'Takes a thing out of the fake world.',
        properties,
        required: ['name'],
      }),
      run: (params, ctx) => this.#run('unmake', params, ctx),
      observe: absenceOf(observeMade),
    };
    this.actions = new Map([
      ['make', make],
      ['unmake', unmake],
    ]);
  }

  /** Runs in progress now, on this fake's queue. */
  get running(): number {
    return this.#running;
  }

  /** The most runs ever in progress at once. */
  get peak(): number {
    return this.#peak;
  }

  /** How many times `action` ran on `name` (started, whatever the end). */
  calls(name: string, action: 'make' | 'unmake' = 'make'): number {
    return this.#calls.get(`${action} ${name}`) ?? 0;
  }

  /** The names `action` ran on, in the order the runs started (this fake's runs only). */
  order(action: 'make' | 'unmake'): string[] {
    return this.journal
      .filter((r) => r.resource === this.resource && r.action === action)
      .map((r) => r.name);
  }

  /** Holds the next run on `name` (of either action) until the test settles the gate. */
  hold(name: string): Gate {
    const held: HeldRun = { started: deferred(), done: deferred() };
    this.#holds.set(name, [...(this.#holds.get(name) ?? []), held]);
    return {
      started: held.started.promise,
      release: () => {
        held.done.resolve();
      },
      fail: (error) => {
        held.done.reject(error);
      },
    };
  }

  /** Makes every run on `name` fail, with this retryability, until `heal(name)`. */
  fail(name: string, failure: FakeFailure): void {
    this.#failures.set(name, failure);
  }

  /** Lets runs on `name` succeed again. */
  heal(name: string): void {
    this.#failures.delete(name);
  }

  /** The thing `name` vanishes behind spin's back: observing it now finds it missing. */
  drift(name: string): void {
    this.world.delete(name);
  }

  async #run(
    action: 'make' | 'unmake',
    params: Record<string, unknown>,
    ctx: ActionContext,
  ): Promise<ActionResult> {
    const name = nameOf(params);
    const key = `${action} ${name}`;
    this.#calls.set(key, (this.#calls.get(key) ?? 0) + 1);
    this.journal.push({ resource: this.resource, action, name, params });
    this.#running += 1;
    this.#peak = Math.max(this.#peak, this.#running);
    try {
      const held = this.#holds.get(name)?.shift();
      if (held !== undefined) {
        held.started.resolve();
        await untilAborted(held.done.promise, ctx.signal);
      }
      const failure = this.#failures.get(name);
      if (failure !== undefined) {
        throw new SpinError('action_failed', failure.message ?? `${key} failed`, {
          retryable: failure.retryable,
        });
      }
      if (action === 'make') this.world.add(name);
      else this.world.delete(name);
      return { output: `${key} done`, observed: { present: true, details: { name } } };
    } finally {
      this.#running -= 1;
    }
  }
}

function nameOf(params: Record<string, unknown>): string {
  const name = params['name'];
  if (typeof name !== 'string') throw new SpinError('invalid_input', 'a fake run needs a name');
  return name;
}

/** `promise`, or a rejection with the abort's reason as soon as `signal` fires. */
function untilAborted(promise: Promise<void>, signal: AbortSignal): Promise<void> {
  const reason = (): Error =>
    signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      reject(reason());
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
