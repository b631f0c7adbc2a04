import { mkdir, rm } from 'node:fs/promises';
import { durationToMs, formatDuration } from '../../core/duration.js';
import { SpinError } from '../../core/errors.js';
import { absenceOf } from '../agent.js';
import type { ActionContext, Agent, AgentAction, Observation } from '../agent.js';
import type { ActionSpec } from '../action-spec.js';
import { confinePath, confineRoot } from '../confined-path.js';
import { writeFileAtomic } from '../fs-util.js';
import { objectParam, optionalStringParam, type Params } from '../params.js';
import { AccelResolver, type AccelChoice, type HostFiles } from './accel.js';
import type { AdmissionPolicy } from '../../core/vm-budget.js';
import { VmAdmission } from './admission.js';
import { builtinSpec } from '../registry.js';
import {
  parseVmConfig,
  readVmConfig,
  serializeVmConfig,
  vmIdOf,
  vmPaths,
  type VmConfig,
  type VmPaths,
} from './vm-config.js';
import {
  discardVm,
  inspectVm,
  launchVm,
  runsConfig,
  stopVm,
  type StopStep,
} from './vm-lifecycle.js';
import { consoleTail, findQemu, waitForConsole, type QemuProcess } from './vm-process.js';
import { restartPolicyOf } from './restart-policy.js';
import { healthOf } from './vm-health.js';
import type { SupervisorRole } from './supervision-record.js';
import { VmSupervisor, type SupervisionEvent } from './vm-supervisor.js';

/** How the emulation agent runs qemu. */
export interface EmulationAgentOptions {
  /** `auto` (default) uses KVM only where it really works; `tcg` or `kvm` force one. */
  accel?: AccelChoice;
  /** Where the facts of the host are read (`/proc/cpuinfo`, `/dev/kvm`, …); the real ones by default. */
  host?: HostFiles;
  /**
   * Set in a long-lived process (the daemon, `spin agent emulation`, `spin watch`): the VMs its
   * starts launch are supervised, and restarted by their policy, for as long as it serves
   * (`Agent.serve`). Unset (an embedded `spin apply`), VMs are started unsupervised.
   */
  supervise?: { role: SupervisorRole; onEvent?: (event: SupervisionEvent) => void };
  /** What of the node a start may take (`defaultAdmission` unless set). */
  admission?: AdmissionPolicy;
}

const defaultStopMs = 30_000;
const defaultReadyMs = 120_000;

const specOf = (action: string): ActionSpec => builtinSpec('emulation', action);

function durationParam(params: Params, field: string, fallback: number): number {
  if (params[field] === undefined) return fallback;
  const ms = durationToMs(params[field]);
  if (ms === undefined)
    throw new SpinError('invalid_input', `Parameter '${field}' must be a duration.`);
  return ms;
}

async function pathsOf(params: Params, ctx: ActionContext): Promise<VmPaths> {
  return vmPaths(ctx, vmIdOf(params));
}

async function requireConfig(paths: VmPaths): Promise<VmConfig> {
  const config = await readVmConfig(paths);
  if (config === undefined) {
    throw new SpinError('not_found', `VM ${paths.id} has no config.`, {
      suggestions: ['Write it first with emulation write_config.'],
    });
  }
  return config;
}

async function observeRun(params: Params, ctx: ActionContext): Promise<Observation> {
  const status = await inspectVm(await pathsOf(params, ctx), ctx.signal);
  return { present: status.state === 'running', details: { ...status } };
}

async function observeConfig(params: Params, ctx: ActionContext): Promise<Observation> {
  const paths = await pathsOf(params, ctx);
  const stored = await readVmConfig(paths);
  if (stored === undefined) return { present: false, details: {} };
  const details: Record<string, unknown> = { name: stored.name };
  if (params['vm'] !== undefined) {
    details['matches'] =
      serializeVmConfig(stored) === serializeVmConfig(parseVmConfig(params['vm']));
  }
  // A config changed by hand no longer says what the package said: that is drift too.
  return { present: details['matches'] !== false, details };
}

/** Confines every file the config names, so a bad path fails at write time, not at start. */
async function checkConfigPaths(ctx: ActionContext, config: VmConfig): Promise<void> {
  for (const image of config.images)
    await confinePath(ctx.roots.images, `${image.volume}/${image.path}`, 'relative');
  if (config.kernel !== undefined) await confinePath(ctx.roots.images, config.kernel, 'relative');
  if (config.initrd !== undefined) await confinePath(ctx.roots.images, config.initrd, 'relative');
}

function running(paths: VmPaths): boolean {
  return findQemu(paths.pid) !== undefined;
}

const writeConfig: AgentAction = {
  spec: specOf('write_config'),
  async run(params, ctx) {
    const paths = await pathsOf(params, ctx);
    const config = parseVmConfig(objectParam(params, 'vm'));
    await checkConfigPaths(ctx, config);
    const text = serializeVmConfig(config);
    const stored = await readVmConfig(paths).catch(() => undefined);
    if (stored !== undefined && serializeVmConfig(stored) === text) {
      return { output: `config of vm ${paths.id} unchanged` };
    }
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
    await writeFileAtomic(paths.config, text);
    const note = running(paths) ? '; takes effect at the next start' : '';
    return {
      output: `config of vm ${paths.id} ${stored === undefined ? 'written' : 'updated'}${note}`,
    };
  },
  observe: observeConfig,
  inverseParams: (params) => ({ id: params['id'] }),
};

const removeConfig: AgentAction = {
  spec: specOf('remove_config'),
  async run(params, ctx) {
    const paths = await pathsOf(params, ctx);
    if (running(paths)) {
      throw new SpinError('action_failed', `VM ${paths.id} is running; its config is kept.`, {
        details: { reason: 'running' },
        suggestions: ['Stop it first with emulation stop.'],
      });
    }
    const dir = await confinePath(ctx.roots.vms, paths.id, 'name');
    if (dir.kind === 'missing') return { output: `config of vm ${paths.id} absent` };
    await rm(paths.dir, { recursive: true });
    return { output: `config of vm ${paths.id} removed` };
  },
  observe: absenceOf(observeConfig),
};

function readyPattern(params: Params): RegExp | undefined {
  const source = optionalStringParam(params, 'ready_when');
  if (source === undefined) return undefined;
  try {
    return new RegExp(source, 'm');
  } catch (error) {
    throw new SpinError(
      'invalid_input',
      `ready_when is not a valid regular expression: ${source}`,
      { cause: error },
    );
  }
}

function startAction(
  accels: AccelResolver,
  supervisor: VmSupervisor,
  admission: VmAdmission,
): AgentAction {
  return {
    spec: specOf('start'),
    async run(params, ctx) {
      const paths = await pathsOf(params, ctx);
      const config = await requireConfig(paths);
      const pattern = readyPattern(params);
      const timeoutMs = durationParam(params, 'ready_timeout', defaultReadyMs);
      const settings = { policy: restartPolicyOf(params), health: healthOf(params, config) };
      const started = Date.now();
      const found = findQemu(paths.pid);
      let restarted = '';
      if (found !== undefined) {
        if (await runsConfig(ctx, paths, config, accels, found)) {
          // Not launched by this start: a failed wait below leaves it as it found it.
          const watching = (await supervisor.keep(paths, settings, found))
            ? supervisor.watch(paths, found, ctx.roots)
            : undefined;
          let output = `vm ${paths.id} already running`;
          try {
            if (pattern !== undefined)
              output += await waitReady(paths, found, pattern, timeoutMs, ctx, started);
          } finally {
            // Taken over whatever the wait says: it ran before this start, and runs on.
            watching?.arm();
          }
          return { output, observed: await observeRun(params, ctx) };
        }
        // It runs on a config that has changed since: restarted through the stop ladder.
        ctx.progress('its config changed: stopping it to start it again');
        await supervisor.stopping(paths);
        const step = await stopVm(paths, defaultStopMs, ctx);
        restarted = ` (config changed; the old one ${stopOutput[step]})`;
      }
      // A start that does not fit the node fails before qemu is launched (see VmAdmission).
      const { qemu, accel, status } = await supervisor.launch(paths, settings, () =>
        admission.launch(ctx, paths.id, config, () => launchVm(ctx, paths, config, accels)),
      );
      // From here on the qemu is this start's: if the start fails, it is ended, so that nothing
      // runs that the state does not record as started. It is watched from now on, and
      // supervised once the start has succeeded.
      const watching = supervisor.watch(paths, qemu, ctx.roots);
      try {
        let output = `vm ${paths.id} ${restarted === '' ? 'started' : 'restarted'} (pid ${String(qemu.pid)}, ${accel})${restarted}`;
        let observed: Observation;
        if (pattern === undefined) {
          // What the launch saw a moment ago is what an observation would see now.
          observed = { present: true, details: { state: 'running', pid: qemu.pid, status } };
        } else {
          output += await waitReady(paths, qemu, pattern, timeoutMs, ctx, started);
          observed = await observeRun(params, ctx);
        }
        watching.arm();
        return { output, observed };
      } catch (error) {
        await supervisor.stopping(paths).catch(() => undefined);
        throw await discardVm(paths, ctx.progress, error);
      }
    },
    observe: observeRun,
    inverseParams: (params) => ({ id: params['id'] }),
  };
}

/** Waits until the console matches `pattern`; the output's `; ready after …`, or throws. */
async function waitReady(
  paths: VmPaths,
  qemu: QemuProcess,
  pattern: RegExp,
  timeoutMs: number,
  ctx: ActionContext,
  started: number,
): Promise<string> {
  ctx.progress(`waiting for the console to match /${pattern.source}/`);
  const outcome = await waitForConsole(paths.console, pattern, {
    timeoutMs,
    signal: ctx.signal,
    qemu,
  });
  if (outcome !== 'matched') {
    const tail = await consoleTail(paths.console);
    throw new SpinError(
      outcome === 'timeout' ? 'timeout' : 'action_failed',
      outcome === 'timeout'
        ? `VM ${paths.id} did not become ready: its console did not match ready_when within ${formatDuration(timeoutMs)}.`
        : `VM ${paths.id} exited before its console matched ready_when.`,
      { retryable: outcome === 'timeout', details: { console: tail } },
    );
  }
  return `; ready after ${formatDuration(Date.now() - started)}`;
}

const stopOutput: Record<StopStep, string> = {
  'already-stopped': 'already stopped',
  powerdown: 'stopped by ACPI powerdown',
  quit: 'stopped by QMP quit after the powerdown timed out',
  sigkill: 'stopped by SIGKILL after powerdown and quit failed',
};

function stopAction(supervisor: VmSupervisor): AgentAction {
  return {
    spec: specOf('stop'),
    async run(params, ctx) {
      const paths = await pathsOf(params, ctx);
      const timeoutMs = durationParam(params, 'timeout', defaultStopMs);
      const started = Date.now();
      // Before anything is stopped: no supervisor may take the VM's end for a failure.
      await supervisor.stopping(paths);
      const step = await stopVm(paths, timeoutMs, ctx);
      await rm(paths.pid, { force: true });
      await rm(paths.qmp, { force: true });
      const took = step === 'already-stopped' ? '' : ` in ${formatDuration(Date.now() - started)}`;
      return {
        output: `vm ${paths.id} ${stopOutput[step]}${took}`,
        observed: { present: true, details: { step } },
      };
    },
    observe: absenceOf(observeRun),
  };
}

/**
 * The emulation agent (qemu): write_config and remove_config keep `$SPIN_HOME/vms/<id>/config.json`;
 * start runs a detached qemu with a QMP socket, pid file and serial console log in that directory,
 * and a start that fails after it launched qemu (error, `ready_when` timeout, abort) ends that
 * qemu; stop escalates from ACPI powerdown to QMP quit to SIGKILL. All four are idempotent.
 * `prepare` decides the accelerator (see `AccelResolver`) before the first start needs it. With
 * `supervise`, started VMs are restarted by their start's `restart` policy while the agent
 * serves, and `serve` adopts those whose supervisor is gone (see `VmSupervisor`).
 */
export function emulationAgent(options: EmulationAgentOptions = {}): Agent {
  const accels = new AccelResolver(options.accel ?? 'auto', options.host);
  const { supervise } = options;
  const admission = new VmAdmission(options.admission);
  const supervisor = new VmSupervisor({
    ...(supervise === undefined ? {} : { role: supervise.role }),
    ...(supervise?.onEvent === undefined ? {} : { onEvent: supervise.onEvent }),
    // A restart is a start of the stored config, with the same disks, by nobody's command.
    relaunch: async (paths, roots) => {
      const ctx = { signal: new AbortController().signal, roots, progress: () => undefined };
      const config = await requireConfig(paths);
      // A restart is admitted as a start is: memory freed by the dead qemu may be taken since.
      const launched = await admission.launch(ctx, paths.id, config, () =>
        launchVm(ctx, paths, config, accels),
      );
      return launched.qemu;
    },
  });
  const actions = [
    writeConfig,
    removeConfig,
    startAction(accels, supervisor, admission),
    stopAction(supervisor),
  ];
  return {
    resource: 'emulation',
    actions: new Map(actions.map((a) => [a.spec.action, a])),
    serve: (roots) => supervisor.serve(roots),
    // The accelerator is decided as the agent starts, so that a probe (where one is needed)
    // overlaps planning and the commands before the first start, rather than delaying it.
    prepare(roots) {
      confineRoot(roots.vms).then(
        (dir) => {
          accels.warm(dir);
        },
        () => undefined, // the first start meets the same problem and reports it
      );
    },
  };
}
