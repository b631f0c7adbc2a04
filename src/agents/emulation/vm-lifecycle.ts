import { spawn } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { SpinError, messageOf } from '../../core/errors.js';
import { throwIfAborted } from '../abort.js';
import type { ActionContext } from '../agent.js';
import { confinePath, confineRoot } from '../confined-path.js';
import { rotateConsole } from './console-rotation.js';
import { detectFormat } from '../storage/image-file.js';
import type { AccelReason, AccelResolver } from './accel.js';
import { buildQemuArgv, type Accel, type QemuLaunch, type ResolvedDrive } from './qemu-argv.js';
import { QmpClient } from './qmp-client.js';
import type { VmConfig, VmPaths } from './vm-config.js';
import { consoleTail, findQemu, stillRuns, waitForExit, type QemuProcess } from './vm-process.js';

/**
 * The run state of a VM as spin sees it:
 *
 *   stopped ──start──▶ running ──stop (powerdown │ quit │ SIGKILL)──▶ stopped
 *
 * `running` needs all three: the pid file names a live process, that process is our qemu (its
 * command line holds our pid file), and QMP answers `query-status`.
 */
export type VmRunState = 'stopped' | 'running';

/** What `inspectVm` saw. */
export interface VmStatus {
  state: VmRunState;
  pid?: number;
  /** QMP's `query-status` status (`running`, `paused`, `shutdown`, …). */
  status?: string;
}

/** The step of `stopVm` that ended the VM. */
export type StopStep = 'already-stopped' | 'powerdown' | 'quit' | 'sigkill';

const qmpTimeoutMs = 10_000;
const quitWaitMs = 5000;

/** Looks at a VM: pid alive and ours, and QMP's status. */
export async function inspectVm(paths: VmPaths, signal: AbortSignal): Promise<VmStatus> {
  const qemu = findQemu(paths.pid);
  if (qemu === undefined) return { state: 'stopped' };
  try {
    return { state: 'running', pid: qemu.pid, status: await queryStatus(paths, 3000, signal) };
  } catch {
    return { state: 'stopped', pid: qemu.pid, status: 'qmp-unreachable' };
  }
}

/** QMP's `query-status` status of the VM (`running`, `paused`, …); throws when QMP is silent. */
async function queryStatus(
  paths: VmPaths,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<string> {
  const qmp = await QmpClient.connect(paths.qmp, { timeoutMs, signal });
  try {
    const reply = (await qmp.execute('query-status')) as { status?: unknown };
    return typeof reply.status === 'string' ? reply.status : 'unknown';
  } finally {
    qmp.close();
  }
}

async function resolveFile(ctx: ActionContext, relative: string, what: string): Promise<string> {
  const file = await confinePath(ctx.roots.images, relative, 'relative');
  if (file.kind !== 'file') {
    throw new SpinError(
      'not_found',
      `The ${what} '${relative}' does not exist under the images root.`,
    );
  }
  return file.path;
}

/** Confines and checks every file a config names; resolved drives carry their detected format. */
export async function resolveLaunchFiles(
  ctx: ActionContext,
  config: VmConfig,
): Promise<Pick<QemuLaunch, 'drives' | 'kernel' | 'initrd'>> {
  const drives: ResolvedDrive[] = [];
  for (const image of config.images) {
    const file = await resolveFile(ctx, `${image.volume}/${image.path}`, 'image');
    drives.push({ file, format: await detectFormat(file), cdrom: image.cdrom });
  }
  const kernel =
    config.kernel === undefined ? undefined : await resolveFile(ctx, config.kernel, 'kernel');
  const initrd =
    config.initrd === undefined ? undefined : await resolveFile(ctx, config.initrd, 'initrd');
  return {
    drives,
    ...(kernel === undefined ? {} : { kernel }),
    ...(initrd === undefined ? {} : { initrd }),
  };
}

/** What a launch started: the qemu, its accelerator, and QMP's first status. */
export interface LaunchedVm {
  qemu: QemuProcess;
  accel: Accel;
  status: string;
}

/** How a daemonizing qemu ended: its exit code (null when a signal ended it) and stderr. */
interface DaemonizeEnd {
  code: number | null;
  stderr: string;
  error?: Error;
}

const maxStderr = 64 * 1024;
const daemonizeMs = 60_000;

/**
 * Runs `qemu-system-x86_64 argv` (which holds `-daemonize`) and waits until the process spin
 * started has exited and closed its stderr: qemu's parent exits once the VM is set up, and the
 * VM runs on, detached, with its output sent to /dev/null. Killed after a minute.
 */
function daemonize(argv: string[], cwd: string): Promise<DaemonizeEnd> {
  return new Promise((resolve) => {
    const child = spawn('qemu-system-x86_64', argv, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let error: Error | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, daemonizeMs);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < maxStderr) stderr += chunk;
    });
    child.once('error', (e) => (error = e));
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, ...(error === undefined ? {} : { error }) });
    });
  });
}

const accelNotes: Record<AccelReason, string> = {
  forced: '',
  'no-kvm-device': ': no usable /dev/kvm',
  'no-virt-flag': ': the CPU has no vmx or svm flag',
  remembered: '',
  probed: '',
};

/**
 * Starts qemu detached (`-daemonize`: qemu returns once the VM is set up, and the VM outlives this
 * process), then checks that QMP answers. The accelerator is decided while the files are checked,
 * and the console of the last boot is moved aside (`console.log.1`, see console-rotation.ts).
 * The launch itself is not interrupted by `ctx.signal` (it is short and bounded, and a qemu
 * killed while daemonizing could leave a VM nobody knows of); the signal is checked once it is
 * done. Whatever fails after qemu was started, the qemu is ended (see `discardVm`) before the
 * error is thrown.
 */
export async function launchVm(
  ctx: ActionContext,
  paths: VmPaths,
  config: VmConfig,
  accels: AccelResolver,
): Promise<LaunchedVm> {
  const [files, { accel, reason }] = await Promise.all([
    resolveLaunchFiles(ctx, config),
    confineRoot(ctx.roots.vms).then((dir) => accels.resolve(dir)),
    rm(paths.qmp, { force: true }),
    rm(paths.pid, { force: true }),
    // The last boot's console is kept: a VM that crashed is looked into after it restarted.
    rotateConsole(paths.console),
  ]);
  throwIfAborted(ctx.signal, 'Starting qemu');
  const argv = buildQemuArgv({ config, paths, accel, ...files });
  ctx.progress(`starting qemu (${accel}${accelNotes[reason]})`);
  try {
    const end = await daemonize(argv, paths.dir);
    throwIfAborted(ctx.signal, 'Starting qemu');
    if (end.code !== 0) {
      const why = end.stderr.trim() || end.error?.message || 'it was killed';
      throw new SpinError('action_failed', `qemu did not start: ${why}`, {
        details: { exitCode: end.code },
      });
    }
    const qemu = findQemu(paths.pid);
    if (qemu === undefined) {
      throw new SpinError('action_failed', 'qemu started but is not running.', {
        details: { console: await consoleTail(paths.console) },
      });
    }
    ctx.progress(`qemu running (pid ${String(qemu.pid)})`);
    let status: string;
    try {
      status = await queryStatus(paths, qmpTimeoutMs, ctx.signal);
    } catch (error) {
      if (error instanceof SpinError && ctx.signal.aborted) throw error;
      throw new SpinError(
        'action_failed',
        'qemu started but its QMP monitor did not answer; it was stopped.',
        { cause: error, retryable: true },
      );
    }
    return { qemu, accel, status };
  } catch (error) {
    throw await discardVm(paths, ctx.progress, error);
  }
}

/**
 * Whether the running `qemu` was started from `config` as it is now: its command line is the
 * one `launchVm` would use. False when the config changed since (memory, cpus, disks, kernel,
 * ports), so that the VM runs on what its config no longer says.
 */
export async function runsConfig(
  ctx: ActionContext,
  paths: VmPaths,
  config: VmConfig,
  accels: AccelResolver,
  qemu: QemuProcess,
): Promise<boolean> {
  const [files, { accel }] = await Promise.all([
    resolveLaunchFiles(ctx, config),
    confineRoot(ctx.roots.vms).then((dir) => accels.resolve(dir)),
  ]);
  const expected = buildQemuArgv({ config, paths, accel, ...files });
  let running: string[];
  try {
    running = (await readFile(`/proc/${String(qemu.pid)}/cmdline`, 'utf8'))
      .split('\0')
      .slice(1, -1);
  } catch {
    return true; // gone meanwhile: nothing runs on an old config
  }
  return running.length === expected.length && running.every((arg, i) => arg === expected[i]);
}

/** Which steps `stopVm` may take. */
export interface StopOptions {
  /**
   * Whether to ask the guest first (QMP `system_powerdown`, then wait `timeoutMs`); false goes
   * straight to `quit`, for a guest that never became ready. True unless set.
   */
  powerdown?: boolean;
}

/**
 * Stops a VM in escalating steps: QMP `system_powerdown` and a wait of `timeoutMs` for the guest
 * to power off, then QMP `quit`, then SIGKILL. Returns the step that stopped it. Throws when
 * `ctx.signal` fires while waiting, or when qemu survives SIGKILL.
 */
export async function stopVm(
  paths: VmPaths,
  timeoutMs: number,
  ctx: Pick<ActionContext, 'signal' | 'progress'>,
  options: StopOptions = {},
): Promise<StopStep> {
  const qemu = findQemu(paths.pid);
  if (qemu === undefined) return 'already-stopped';
  let qmp: QmpClient | undefined;
  try {
    qmp = await QmpClient.connect(paths.qmp, { timeoutMs: 3000, signal: ctx.signal });
  } catch {
    qmp = undefined; // a VM whose monitor is gone is still stopped, by force
  }
  try {
    if (qmp !== undefined) {
      // Waits end early on qemu's SHUTDOWN event or its monitor closing, not by polling.
      if (options.powerdown ?? true) {
        ctx.progress('sending ACPI powerdown');
        await qmp.execute('system_powerdown').catch(() => undefined);
        if (await waitForExit(qemu, timeoutMs, ctx.signal, qmp.ending)) return 'powerdown';
        ctx.progress('powerdown timed out; sending QMP quit');
      } else {
        ctx.progress('sending QMP quit');
      }
      await qmp.execute('quit').catch(() => undefined); // the reply may be lost as qemu exits
      if (await waitForExit(qemu, quitWaitMs, ctx.signal, qmp.ending)) return 'quit';
    }
    ctx.progress('killing qemu');
    // Only the qemu found above: a pid that now names another process is left alone.
    if (stillRuns(qemu)) {
      try {
        process.kill(qemu.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    if (!(await waitForExit(qemu, quitWaitMs, ctx.signal))) {
      throw new SpinError('action_failed', `qemu (pid ${String(qemu.pid)}) survived SIGKILL.`, {
        retryable: true,
      });
    }
    return 'sigkill';
  } finally {
    qmp?.close();
  }
}

/**
 * Ends the qemu a start launched when the start fails after the launch (any error, a timeout, an
 * abort), so that no VM runs that the state does not record: QMP `quit` (no powerdown: the guest
 * never became ready), then SIGKILL, then its pid file and QMP socket are removed. Runs to its end
 * whatever stopped the start (its waits are its own, a few seconds each). Returns the error to
 * throw: `error` itself, or, when qemu could not be ended, a SpinError saying so as well.
 */
export async function discardVm(
  paths: VmPaths,
  progress: (line: string) => void,
  error: unknown,
): Promise<unknown> {
  try {
    const step = await stopVm(
      paths,
      0,
      { signal: new AbortController().signal, progress },
      { powerdown: false },
    );
    if (step !== 'already-stopped') progress(`the qemu this start launched was stopped (${step})`);
    await rm(paths.pid, { force: true });
    await rm(paths.qmp, { force: true });
    return error;
  } catch (stopError) {
    return new SpinError(
      'action_failed',
      `${messageOf(error)}; the qemu it started could not be stopped: ${messageOf(stopError)}`,
      { cause: error, retryable: true },
    );
  }
}
