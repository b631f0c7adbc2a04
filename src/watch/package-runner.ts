import type { ApplyReason } from './watch-events.js';

/** Work on one package: make it match its file, or let it go (its file is gone). */
export type PackageWork = { kind: 'apply'; reason: ApplyReason } | { kind: 'remove' };

/**
 * Where one package's work stands:
 *
 *   idle ──request──▶ queued ──slot free──▶ running ──done──▶ idle
 *                      ▲                       │ request while running
 *                      └── (once done) ◀── dirty
 *
 * Work of one package never overlaps: a request while it runs marks it dirty and it runs once
 * more afterwards, and requests while it waits merge into one. Different packages run side by
 * side, up to `concurrency` at once.
 */
export type PackageSlotState = 'idle' | 'queued' | 'running' | 'dirty';

interface Slot {
  state: PackageSlotState;
  work?: PackageWork;
}

/** Options of a PackageRunner. */
export interface PackageRunnerOptions {
  concurrency: number;
  /** Carries out one piece of work; looks up the package's newest content when it starts. */
  run: (name: string, work: PackageWork) => Promise<void>;
}

/** Schedules package work: serial per package, parallel across packages (see PackageSlotState). */
export class PackageRunner {
  readonly #slots = new Map<string, Slot>();
  readonly #queue: string[] = [];
  readonly #options: PackageRunnerOptions;
  readonly #idleWaiters: (() => void)[] = [];
  #running = 0;
  #stopped = false;

  constructor(options: PackageRunnerOptions) {
    this.#options = options;
  }

  /** Asks for work on `name`; merges with work already waiting (see `merge`). */
  request(name: string, work: PackageWork): void {
    if (this.#stopped) return;
    const slot = this.#slots.get(name) ?? { state: 'idle' };
    this.#slots.set(name, slot);
    slot.work = merge(slot.work, work);
    switch (slot.state) {
      case 'idle':
        slot.state = 'queued';
        this.#queue.push(name);
        this.#pump();
        return;
      case 'running':
        slot.state = 'dirty';
        return;
      case 'queued':
      case 'dirty':
        return;
    }
  }

  /** The state of a package's work. */
  stateOf(name: string): PackageSlotState {
    return this.#slots.get(name)?.state ?? 'idle';
  }

  /** Resolves when nothing waits and nothing runs. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Starts nothing more; resolves once what runs has ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#queue.length = 0;
    for (const slot of this.#slots.values()) {
      if (slot.state === 'queued') slot.state = 'idle';
    }
    if (this.#running > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
  }

  #pump(): void {
    while (!this.#stopped && this.#running < this.#options.concurrency) {
      const name = this.#queue.shift();
      if (name === undefined) break;
      const slot = this.#slots.get(name);
      const work = slot?.work;
      if (slot === undefined || work === undefined) continue;
      Reflect.deleteProperty(slot, 'work');
      slot.state = 'running';
      this.#running += 1;
      void this.#options
        .run(name, work)
        .catch(() => undefined) // `run` reports its own failures
        .finally(() => {
          this.#running -= 1;
          if (slot.state === 'dirty' && !this.#stopped) {
            slot.state = 'queued';
            this.#queue.push(name);
          } else {
            slot.state = 'idle';
          }
          this.#pump();
          if (this.#running === 0 && this.#queue.length === 0) {
            for (const resolve of this.#idleWaiters.splice(0)) resolve();
          }
        });
    }
  }
}

/**
 * Two requests waiting for one package make one: the newest kind wins (a file removed then
 * written again is applied; applied then removed is let go), and an apply keeps the most telling
 * reason (a change beats the first look, which beats a resync); a resync adds nothing to work
 * already waiting.
 */
function merge(waiting: PackageWork | undefined, next: PackageWork): PackageWork {
  if (waiting === undefined) return next;
  // A resync never displaces what a file asked for.
  if (next.kind === 'apply' && next.reason === 'resync') return waiting;
  if (waiting.kind !== 'apply' || next.kind !== 'apply') return next;
  const rank: Record<ApplyReason, number> = { resync: 0, initial: 1, changed: 2 };
  return rank[waiting.reason] >= rank[next.reason] ? waiting : next;
}
