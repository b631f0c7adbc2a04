import { readdir } from 'node:fs/promises';
import { messageOf } from '../../core/errors.js';
import { currentProcess } from '../../core/process-identity.js';
import type { AgentRoots } from '../agent.js';
import {
  isSupervised,
  readSupervision,
  writeSupervision,
  type SupervisionRecord,
  type SupervisorIdentity,
  type SupervisorRole,
} from './supervision-record.js';
import * as transitions from './supervision-transitions.js';
import type { SupervisionSettings } from './supervision-transitions.js';
import { vmPaths, type VmPaths } from './vm-config.js';
import { ExitWatch, type ExitCause, type VmExit } from './vm-exit.js';
import { withVmLock } from './vm-lock.js';
import { HealthMonitor } from './vm-health.js';
import { stopVm } from './vm-lifecycle.js';
import { findQemu, pause, type QemuProcess } from './vm-process.js';

/**
 * What a supervisor did, for the audit log (one JSON line each, beside the broker's transitions):
 * `adopted` a VM whose supervisor was gone; saw it `exited` (with the cause); is `restarting` it
 * after `waitMs`; `restarted` it (new `pid`) or its restart failed (`restart-failed`); `gave-up`
 * once the policy's attempts were used up.
 */
export interface SupervisionEvent {
  type: 'vm';
  at: number;
  vm: string;
  event: 'adopted' | 'exited' | 'restarting' | 'restarted' | 'restart-failed' | 'gave-up';
  cause?: ExitCause;
  detail?: string;
  /** Restarts since the start command ran, after this event. */
  restarts: number;
  waitMs?: number;
  pid?: number;
  supervisor: { pid: number; role: SupervisorRole };
}

/** What a supervisor needs: who it is, how to launch a VM again, and whom to tell. */
export interface VmSupervisorOptions {
  /** Set when this process supervises (daemon, agent, watch); unset: VMs are only recorded. */
  role?: SupervisorRole;
  /** Launches the VM of `paths` from its stored config, as a start does; returns its qemu. */
  relaunch: (paths: VmPaths, roots: AgentRoots) => Promise<QemuProcess>;
  onEvent?: (event: SupervisionEvent) => void;
  /** In [0, 1): the jitter of backoffs. Math.random unless given. */
  random?: () => number;
}

/** One VM this process supervises. */
interface Supervised {
  roots: AgentRoots;
  stop: AbortController;
  /** Settles once the start that launched the VM has succeeded: exits before then are its own. */
  armed: Promise<void>;
  arm: () => void;
  watch?: ExitWatch | undefined;
  loop: Promise<void>;
}

/**
 * Where a VM's supervision goes on from: a qemu to watch, or an exit to decide on (`seen` when
 * it was already recorded and reported).
 */
type Next = { qemu: QemuProcess } | { exit: VmExit; seen: boolean };

/** The longest a timer can wait; longer waits are waited in parts. */
const maxTimerMs = 2 ** 31 - 1;

/**
 * The supervisor of the VMs one process started, and of those it adopted: it watches each qemu
 * (see `ExitWatch`: events, not polling), classifies how it ended, and restarts it by its start's
 * `restart` policy — same stored config, same disks — with a doubling, jittered delay, giving up
 * (or waiting out the interval) once the attempts are used up. Every step is written to the VM's
 * supervision record and reported as a `SupervisionEvent`.
 *
 * A VM spin stops is never restarted: a stop first ends this process's watch of it (`stopping`),
 * then records the intent `stop` under the VM's lifecycle lock, and only then acts; a supervisor
 * (of this process or another) decides a restart under the same lock, after reading that intent
 * and checking that no qemu of the VM runs.
 *
 * Without a `role` the supervisor supervises nothing: starts are recorded with no supervisor
 * (what `spin status` shows as "not supervised"), and stops still record their intent.
 */
export class VmSupervisor {
  readonly #options: VmSupervisorOptions;
  readonly #identity: SupervisorIdentity | undefined;
  readonly #vms = new Map<string, Supervised>();

  constructor(options: VmSupervisorOptions) {
    this.#options = options;
    this.#identity =
      options.role === undefined ? undefined : { ...currentProcess(), role: options.role };
  }

  /** Whether this process supervises the VMs it starts. */
  get supervising(): boolean {
    return this.#identity !== undefined;
  }

  /**
   * Starts supervising under `roots`: adopts the VMs whose supervisor is gone (a daemon killed and
   * started again), resuming a restart that was due, and returns the function that ends
   * supervision. Ending it leaves every VM running, its record naming this process, so that the
   * next supervisor adopts it.
   */
  serve(roots: AgentRoots): () => Promise<void> {
    if (this.#identity === undefined) return () => Promise.resolve();
    const adopting = this.#adoptAll(roots).catch(() => undefined);
    return async () => {
      await adopting;
      const entries = [...this.#vms.values()];
      this.#vms.clear();
      for (const entry of entries) this.#end(entry);
      await Promise.all(entries.map((entry) => entry.loop));
    };
  }

  /**
   * Before spin stops a VM (stop, destroy, a restart for a changed config, a start that failed
   * after its launch): ends this process's watch of it, then records the intent `stop` under the
   * lifecycle lock, so that no supervisor restarts it. Waits for a restart in flight to finish
   * first (the stop then stops what it launched).
   */
  async stopping(paths: VmPaths): Promise<void> {
    await this.#release(paths.id);
    // A VM never started has no record (nor, maybe, a directory to hold a lock in).
    if ((await readSupervision(paths)) === undefined) return;
    await withVmLock(paths, async () => {
      const record = await readSupervision(paths);
      if (record !== undefined && record.intent !== 'stop')
        await writeSupervision(paths, transitions.stopping(record));
    });
  }

  /**
   * Launches a VM for a start: under its lifecycle lock, calls `launch` (which spawns qemu) and
   * records the run — supervised by this process when it supervises, with the start's settings,
   * no restarts yet. Call `watch` then.
   */
  async launch<T extends { qemu: QemuProcess }>(
    paths: VmPaths,
    settings: SupervisionSettings,
    launch: () => Promise<T>,
  ): Promise<T> {
    await this.#release(paths.id);
    return withVmLock(paths, async () => {
      const started = await launch();
      const supervisor = this.#identity ?? null;
      await writeSupervision(
        paths,
        transitions.launched(paths.id, supervisor, settings, started.qemu, Date.now()),
      );
      return started;
    });
  }

  /**
   * A start found the VM running on its config: records the start's settings, and supervises the
   * VM here when this process supervises and no live process does. True when this process is to
   * watch it (call `watch` then).
   */
  async keep(paths: VmPaths, settings: SupervisionSettings, qemu: QemuProcess): Promise<boolean> {
    return withVmLock(paths, async () => {
      const record = await readSupervision(paths);
      if (this.#vms.has(paths.id) && record !== undefined) {
        await writeSupervision(paths, transitions.resettled(record, settings));
        return false;
      }
      const me = this.#identity;
      const takeOver = me !== undefined && (record === undefined || !isSupervised(record));
      const supervisor = takeOver ? me : (record?.supervisor ?? null);
      await writeSupervision(
        paths,
        transitions.kept(record, paths.id, supervisor, settings, qemu, Date.now()),
      );
      return takeOver;
    });
  }

  /**
   * Watches a VM a start launched or kept, from the moment it runs, so that no end of it goes
   * unheard; call `arm` on what it returns once the start has succeeded: an exit seen before
   * then is the start's to report (it fails, and `stopping` ends this watch). A no-op when this
   * process does not supervise.
   */
  watch(paths: VmPaths, qemu: QemuProcess, roots: AgentRoots): { arm: () => void } {
    if (this.#identity === undefined) return { arm: () => undefined };
    return this.#supervise(paths, roots, { qemu }, false);
  }

  #supervise(
    paths: VmPaths,
    roots: AgentRoots,
    from: Next,
    startArmed = true,
  ): { arm: () => void } {
    const previous = this.#vms.get(paths.id);
    if (previous !== undefined) this.#end(previous);
    let arm = (): void => undefined;
    const armed = new Promise<void>((resolve) => (arm = resolve));
    const entry: Supervised = {
      roots,
      stop: new AbortController(),
      armed,
      arm,
      loop: Promise.resolve(),
    };
    this.#vms.set(paths.id, entry);
    if (startArmed) entry.arm();
    entry.loop = this.#run(paths, entry, from)
      .catch(() => undefined) // a record that cannot be written: the VM is left as it is
      .finally(() => {
        if (this.#vms.get(paths.id) === entry) this.#vms.delete(paths.id);
      });
    return { arm: entry.arm };
  }

  #end(entry: Supervised): void {
    entry.stop.abort();
    entry.watch?.close();
  }

  async #release(id: string): Promise<void> {
    const entry = this.#vms.get(id);
    if (entry === undefined) return;
    this.#vms.delete(id);
    this.#end(entry);
    await entry.loop;
  }

  /** Watches, records and restarts one VM until its supervision ends. */
  async #run(paths: VmPaths, entry: Supervised, from: Next): Promise<void> {
    let next = from;
    while (!entry.stop.signal.aborted) {
      let exit: VmExit;
      let seen = false;
      if ('qemu' in next) {
        const ended = await this.#untilExit(paths, entry, next.qemu);
        if (ended === undefined || !(await untilArmed(entry))) return;
        exit = ended;
      } else {
        ({ exit, seen } = next);
      }
      const waitMs = await this.#afterExit(paths, exit, seen);
      if (waitMs === undefined) return;
      if (!(await sleep(waitMs, entry.stop.signal))) return;
      const restarted = await this.#restart(paths, entry.roots);
      if (restarted === undefined) return;
      next = restarted;
    }
  }

  /**
   * Waits until `qemu` ends (undefined when supervision ended first). Once the start is armed,
   * runs the VM's health checks, if its record has any: a VM that fails them is ended (QMP quit,
   * then SIGKILL: a guest that stopped answering is not asked to power off) and its end is
   * `unhealthy`.
   */
  async #untilExit(
    paths: VmPaths,
    entry: Supervised,
    qemu: QemuProcess,
  ): Promise<VmExit | undefined> {
    const watch = await ExitWatch.attach(paths, qemu);
    const { signal } = entry.stop;
    if (signal.aborted) {
      watch.close();
      return undefined;
    }
    entry.watch = watch;
    let unhealthy: string | undefined;
    let monitor: HealthMonitor | undefined;
    let over = false;
    void entry.armed.then(async () => {
      const health = (await readSupervision(paths))?.health;
      if (health === undefined || over) return;
      monitor = new HealthMonitor({
        settings: health,
        consolePath: paths.console,
        onUnhealthy: (detail) => {
          unhealthy = detail;
          const quiet = { signal, progress: () => undefined };
          stopVm(paths, 0, quiet, { powerdown: false }).catch(() => undefined);
        },
      });
      await monitor.start();
    });
    let onAbort = (): void => undefined;
    const ended = await Promise.race([
      watch.exited,
      new Promise<undefined>((resolve) => {
        onAbort = () => {
          resolve(undefined);
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    over = true;
    monitor?.stop();
    signal.removeEventListener('abort', onAbort);
    entry.watch = undefined;
    if (ended === undefined || unhealthy === undefined) return ended;
    return { cause: 'unhealthy', at: ended.at, detail: unhealthy };
  }

  /**
   * Records an exit and decides what follows, under the lifecycle lock: undefined when nothing
   * follows (spin stopped it, another process took it over, the policy does not restart, or the
   * attempts are used up), else the wait before the restart.
   */
  async #afterExit(paths: VmPaths, exit: VmExit, seen: boolean): Promise<number | undefined> {
    const emit = this.#emitter(paths.id);
    return withVmLock(paths, async () => {
      const record = await readSupervision(paths);
      if (!this.#owns(record) || findQemu(paths.pid) !== undefined) return undefined;
      const random = (this.#options.random ?? Math.random)();
      const after = transitions.exited(record, exit, Date.now(), random);
      await writeSupervision(paths, after.record);
      const { cause, detail } = exit;
      if (!seen) emit('exited', record.restarts, { cause, detail });
      if (after.next === 'exited') return undefined;
      if (after.next === 'gave-up') {
        emit('gave-up', record.restarts, { cause });
        return undefined;
      }
      emit('restarting', record.restarts, { cause, waitMs: after.waitMs });
      return after.waitMs;
    });
  }

  /**
   * Launches the VM again once its backoff is over, under the lifecycle lock and only if it is
   * still ours to restart: `{ qemu }` to watch, `{ exit }` when the launch failed (another exit
   * to decide on), undefined when someone else started or stopped it meanwhile.
   */
  async #restart(paths: VmPaths, roots: AgentRoots): Promise<Next | undefined> {
    const emit = this.#emitter(paths.id);
    return withVmLock(paths, async () => {
      const record = await readSupervision(paths);
      if (!this.#owns(record) || findQemu(paths.pid) !== undefined) return undefined;
      const counted = transitions.restarting(record, Date.now());
      try {
        const qemu = await this.#options.relaunch(paths, roots);
        await writeSupervision(paths, transitions.restarted(counted, qemu, Date.now()));
        emit('restarted', counted.restarts, { pid: qemu.pid });
        return { qemu };
      } catch (error) {
        const exit: VmExit = { cause: 'start-failed', at: Date.now(), detail: messageOf(error) };
        await writeSupervision(paths, { ...counted, lastExit: exit });
        emit('restart-failed', counted.restarts, { cause: exit.cause, detail: exit.detail });
        return { exit, seen: true };
      }
    });
  }

  /** Whether `record` leaves the VM to this process to restart. */
  #owns(record: SupervisionRecord | undefined): record is SupervisionRecord {
    const me = this.#identity;
    return (
      record !== undefined &&
      me !== undefined &&
      record.intent === 'run' &&
      record.supervisor?.pid === me.pid &&
      record.supervisor.startTime === me.startTime &&
      record.supervisor.host === me.host
    );
  }

  #emitter(vm: string) {
    return (
      event: SupervisionEvent['event'],
      restarts: number,
      extra: { cause?: ExitCause; detail?: string | undefined; waitMs?: number; pid?: number } = {},
    ): void => {
      const me = this.#identity;
      if (me === undefined) return;
      const fields = Object.fromEntries(
        Object.entries(extra).filter(([, value]) => value !== undefined),
      );
      this.#options.onEvent?.({
        type: 'vm',
        at: Date.now(),
        vm,
        event,
        ...fields,
        restarts,
        supervisor: { pid: me.pid, role: me.role },
      });
    };
  }

  /** Takes over every VM of `roots` whose supervisor is gone and which spin has not stopped. */
  async #adoptAll(roots: AgentRoots): Promise<void> {
    let names: string[];
    try {
      names = (await readdir(roots.vms, { withFileTypes: true }))
        .filter((entry) => entry.isDirectory() && !entry.name.startsWith('.'))
        .map((entry) => entry.name);
    } catch {
      return; // no VM yet
    }
    for (const name of names) {
      try {
        await this.#adopt(await vmPaths({ roots }, name), roots);
      } catch {
        // One VM that cannot be looked at (a broken record, a bad name) leaves the others.
      }
    }
  }

  async #adopt(paths: VmPaths, roots: AgentRoots): Promise<void> {
    const me = this.#identity;
    const orphaned = (record: SupervisionRecord | undefined): record is SupervisionRecord =>
      record !== undefined &&
      record.intent === 'run' &&
      record.supervisor !== null &&
      (record.state === 'running' || record.state === 'backoff') &&
      !isSupervised(record);
    if (me === undefined || !orphaned(await readSupervision(paths))) return;
    const claimed = await withVmLock(paths, async () => {
      const record = await readSupervision(paths);
      if (!orphaned(record)) return undefined;
      await writeSupervision(paths, { ...record, supervisor: me });
      return record;
    });
    if (claimed === undefined || this.#vms.has(paths.id)) return;
    const qemu = findQemu(paths.pid);
    this.#emitter(paths.id)(
      'adopted',
      claimed.restarts,
      qemu === undefined ? {} : { pid: qemu.pid },
    );
    if (qemu !== undefined) this.#supervise(paths, roots, { qemu });
    else if (claimed.state === 'backoff' && claimed.lastExit !== undefined)
      this.#supervise(paths, roots, { exit: claimed.lastExit, seen: true });
    else
      this.#supervise(paths, roots, { exit: { cause: 'vanished', at: Date.now() }, seen: false });
  }
}

/** Waits until the entry is armed: false when its supervision ended first. */
async function untilArmed(entry: Supervised): Promise<boolean> {
  const { signal } = entry.stop;
  if (signal.aborted) return false;
  let onAbort = (): void => undefined;
  const ended = new Promise<void>((resolve) => {
    onAbort = resolve;
    signal.addEventListener('abort', onAbort, { once: true });
  });
  await Promise.race([entry.armed, ended]);
  signal.removeEventListener('abort', onAbort);
  return !signal.aborted;
}

/** Waits `ms` (in parts where a timer cannot hold it); false when `signal` ended it first. */
async function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (signal.aborted) return false;
    const left = until - Date.now();
    if (left <= 0) return true;
    await pause(Math.min(left, maxTimerMs), signal);
  }
}
