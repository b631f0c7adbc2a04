import { QmpClient, type QmpEvent } from './qmp-client.js';
import type { VmPaths } from './vm-config.js';
import { pause, stillRuns, waitForExit, type QemuProcess } from './vm-process.js';

/**
 * Why a VM's qemu ended, as its supervisor tells it:
 * - `poweroff`: the guest powered itself off (QMP `SHUTDOWN`, `guest: true`, reason
 *   `guest-shutdown`) — the one success;
 * - `panic`: the guest's kernel panicked (`GUEST_PANICKED`, or `SHUTDOWN` reason `guest-panic`,
 *   through `-device pvpanic`);
 * - `host-stop`: ended from the host without spin asking (a QMP `quit`, a SIGTERM: `SHUTDOWN`
 *   with `guest: false`);
 * - `died`: ended with no shutdown at all (SIGKILL, a crash of qemu, the host's OOM killer);
 * - `unhealthy`: its health check failed and the supervisor ended it (see vm-health.ts);
 * - `start-failed`: a restart could not launch it;
 * - `vanished`: found not running by a supervisor that adopted it: how it ended is unknown.
 */
export type ExitCause =
  'poweroff' | 'panic' | 'host-stop' | 'died' | 'unhealthy' | 'start-failed' | 'vanished';

/** Whether an exit is a failure: everything but the guest powering itself off. */
export function isFailure(cause: ExitCause): boolean {
  return cause !== 'poweroff';
}

/** How a VM's qemu ended: the cause, when it was seen, and qemu's own reason when it gave one. */
export interface VmExit {
  cause: ExitCause;
  at: number;
  /** QMP's `SHUTDOWN` reason (`guest-panic`, `host-signal`, …), or what went wrong. */
  detail?: string;
}

/** The cause of an exit from the events qemu sent before its monitor closed. */
export function classifyExit(events: readonly QmpEvent[]): { cause: ExitCause; detail?: string } {
  if (events.some((e) => e.event === 'GUEST_PANICKED'))
    return { cause: 'panic', detail: 'guest-panic' };
  const shutdown = events.find((e) => e.event === 'SHUTDOWN');
  if (shutdown === undefined) return { cause: 'died' };
  const reason =
    typeof shutdown.data?.['reason'] === 'string' ? shutdown.data['reason'] : 'unknown';
  if (reason === 'guest-panic') return { cause: 'panic', detail: reason };
  if (shutdown.data?.['guest'] === true && reason === 'guest-shutdown')
    return { cause: 'poweroff', detail: reason };
  return { cause: 'host-stop', detail: reason };
}

/** How long a qemu may take to be gone from /proc after its monitor closed. */
const exitSettleMs = 5000;

/**
 * Watches one running qemu until it ends, by its second QMP monitor (`events.sock`): the events
 * that say why (`SHUTDOWN`, `GUEST_PANICKED`) and the monitor's close, which the kernel makes
 * the moment qemu's process ends, however it ends (kill -9 included) — no polling. A VM whose
 * monitor cannot be reached (held by another process, or gone) is watched by looking at its
 * process at intervals of at most a second instead, and its end is `died`.
 */
export class ExitWatch {
  /** Settles once the qemu has ended (never rejects); not at all if the watch is closed first. */
  readonly exited: Promise<VmExit>;
  readonly #stop = new AbortController();
  #qmp: QmpClient | undefined;

  private constructor(qemu: QemuProcess, qmp: QmpClient | undefined) {
    this.#qmp = qmp;
    this.exited = qmp === undefined ? this.#polled(qemu) : this.#heard(qemu, qmp);
  }

  /** Connects to the VM's events monitor (a few seconds at most) and starts watching `qemu`. */
  static async attach(paths: VmPaths, qemu: QemuProcess): Promise<ExitWatch> {
    const qmp = await QmpClient.connect(paths.events, {
      timeoutMs: 3000,
      alive: () => stillRuns(qemu),
    }).catch(() => undefined);
    return new ExitWatch(qemu, qmp);
  }

  /** Whether the watch hears qemu's events, or only looks at its process. */
  get hearsEvents(): boolean {
    return this.#qmp !== undefined;
  }

  /** Stops watching: the VM runs on, and `exited` never settles. */
  close(): void {
    this.#stop.abort();
    this.#qmp?.close();
    this.#qmp = undefined;
  }

  /** Whether `close` was called (read through a call: it changes while the watch awaits). */
  #closed(): boolean {
    return this.#stop.signal.aborted;
  }

  async #heard(qemu: QemuProcess, qmp: QmpClient): Promise<VmExit> {
    const events: QmpEvent[] = [];
    qmp.subscribe((event) => {
      if (event.event === 'SHUTDOWN' || event.event === 'GUEST_PANICKED') events.push(event);
    });
    await qmp.closed;
    if (this.#closed()) return never();
    const at = Date.now();
    // The monitor closes as qemu's process ends: the process is gone a moment later.
    const gone = await waitForExit(qemu, exitSettleMs, this.#stop.signal).catch(() => false);
    if (this.#closed()) return never();
    return gone ? { ...classifyExit(events), at } : this.#polled(qemu);
  }

  async #polled(qemu: QemuProcess): Promise<VmExit> {
    let delay = 10;
    while (stillRuns(qemu)) {
      await pause(delay, this.#stop.signal);
      if (this.#closed()) return never();
      delay = Math.min(delay * 2, 1000);
    }
    return { cause: 'died', at: Date.now() };
  }
}

/** A promise that never settles: what a closed watch's `exited` stays. */
function never(): Promise<never> {
  return new Promise<never>(() => undefined);
}
