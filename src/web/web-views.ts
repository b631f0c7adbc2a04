import { closeSync, openSync, readSync, fstatSync } from 'node:fs';
import { join } from 'node:path';
import { agentRoots } from '../agents/agent-roots.js';
import { vmIdOf } from '../agents/emulation/vm-config.js';
import type { Broker } from '../broker/broker.js';
import type { BrokerEvent, CommandStatus, PackageStatus } from '../broker/broker-types.js';
import type { PackageSummary } from '../broker/queue-store.js';
import { SpinError } from '../core/errors.js';
import type { CommandRecord, StateData } from '../core/state-types.js';
import { keptAttempts, logSegment, logsRoot } from '../executor/attempt-log.js';
import { attemptChunk } from '../reconcile/command-logs.js';
import { readState } from '../reconcile/state-file.js';
import { graphLayout, type GraphLayout } from './graph-layout.js';
import { stateStatus } from '../reconcile/status.js';
import type { SupervisionView } from '../reconcile/vm-supervision-view.js';

/** One command as the web view draws it: a node of its package's graph. */
export interface WebCommand {
  id: string;
  resource: string;
  action: string;
  needs: string[];
  /** A broker command state (`running`, `failed`, …) or a recorded one. */
  state: string;
  attempt: number;
  startedAt?: number;
  durationMs?: number;
  error?: string;
  /** Why it did not run: a skip names the command that failed. */
  reason?: string;
  /** The last lines its last attempt printed. */
  outputTail?: string[];
}

/** A package in the list: its state and how many commands are in each state. */
export interface WebPackageSummary {
  name: string;
  file?: string;
  appliedAt?: string;
  /** The state of the run in progress or last run by the daemon, else what the state file says. */
  state: string;
  counts: Record<string, number>;
}

/** A package with every command, and where to draw each. */
export interface WebPackage extends WebPackageSummary {
  commands: WebCommand[];
  layout: GraphLayout;
}

/** A VM an `emulation.start` command of the state file started. */
export interface WebVm {
  id: string;
  package: string;
  command: string;
  running: boolean;
  upSince?: string;
  restarts: number;
  lastExit?: SupervisionView['lastExit'];
  supervision?: SupervisionView['state'];
}

/** Lines of an attempt's log the web view shows. */
const outputTailLines = 20;
/** The audit log's tail that the web view reads. */
const auditTailBytes = 1024 * 1024;

/**
 * The read-only views of the web page, built from the state file (what was last applied), the
 * broker (what runs now: a run of the daemon newer than the state's record wins, command by
 * command), the attempt logs, the VMs' files and the audit log. Command timings come from the
 * broker events it is told of (`note`), since the broker keeps only each command's last change.
 */
export class WebViews {
  readonly #home: string;
  readonly #statePath: string;
  readonly #broker: Broker;
  readonly #started = new Map<string, number>();
  readonly #finished = new Map<string, number>();

  constructor(options: { home: string; statePath: string; broker: Broker }) {
    this.#home = options.home;
    this.#statePath = options.statePath;
    this.#broker = options.broker;
  }

  /** Records when commands start and end. */
  note(event: BrokerEvent): void {
    if (event.type !== 'command') return;
    const key = `${event.packageId}/${event.commandId}`;
    if (event.to === 'running') {
      this.#started.set(key, event.at);
      this.#finished.delete(key);
    } else if (['succeeded', 'failed', 'skipped', 'cancelled'].includes(event.to)) {
      this.#finished.set(key, event.at);
    }
  }

  /** Every package of the state file and of the broker's recent runs. */
  async packages(): Promise<WebPackageSummary[]> {
    const state = await this.#state();
    const latest = await this.#latestRuns();
    const names = new Set([...Object.keys(state.packages), ...latest.keys()]);
    const list: WebPackageSummary[] = [];
    for (const name of [...names].sort()) list.push(summaryOf(await this.package(name, state)));
    return list;
  }

  /** One package and its commands; `not_found` when neither the state nor the broker knows it. */
  async package(name: string, known?: StateData): Promise<WebPackage> {
    const state = known ?? (await this.#state());
    const record = state.packages[name];
    const run = (await this.#latestRuns()).get(name);
    const live =
      run !== undefined &&
      (record === undefined || run.createdAt > Date.parse(record.appliedAt) || isOpen(run.state))
        ? await this.#broker.status(run.id)
        : undefined;
    if (record === undefined && live === undefined) {
      throw new SpinError('not_found', `no package '${name}'`);
    }
    const commands = new Map<string, WebCommand>();
    for (const [id, r] of Object.entries(record?.commands ?? {})) {
      commands.set(id, this.#fromRecord(name, id, r));
    }
    for (const c of live?.commands ?? []) {
      commands.set(c.id, this.#fromBroker(name, live as PackageStatus, c));
    }
    const list = [...commands.values()];
    const pkg: WebPackage = {
      name,
      state: live?.state ?? recordedState(list),
      counts: countsOf(list),
      commands: list,
      layout: graphLayout(list),
    };
    if (record !== undefined) {
      pkg.file = record.file;
      pkg.appliedAt = record.appliedAt;
    }
    return pkg;
  }

  /** The VMs the state file's start commands name, with whether each runs and its supervision. */
  async vms(): Promise<WebVm[]> {
    const status = await stateStatus({ home: this.#home, statePath: this.#statePath });
    const state = await this.#state();
    const vms: WebVm[] = [];
    for (const pkg of status.packages) {
      for (const c of pkg.commands) {
        if (c.resource !== 'emulation' || c.action !== 'start') continue;
        const params = state.packages[pkg.name]?.commands[c.id]?.params ?? {};
        const vm: WebVm = {
          id: vmIdOf(params),
          package: pkg.name,
          command: c.id,
          running: c.vm === 'running',
          restarts: c.supervision?.restarts ?? 0,
        };
        const s = c.supervision;
        if (s?.upSince !== undefined) vm.upSince = s.upSince;
        if (s?.lastExit !== undefined) vm.lastExit = s.lastExit;
        if (s !== undefined) vm.supervision = s.state;
        vms.push(vm);
      }
    }
    return vms;
  }

  /** The console file of VM `vm` (`vms/<id>/console.log`); `usage` when `vm` is no VM id. */
  consolePath(vm: string): string {
    let id: string;
    try {
      id = vmIdOf({ id: /^[0-9]+$/.test(vm) ? Number(vm) : vm });
    } catch {
      throw new SpinError('usage', `'${vm}' is not a VM id`);
    }
    return join(agentRoots(this.#home).vms, id, 'console.log');
  }

  /** The last `bytes` of a VM's console, and the size it had then (where following resumes). */
  consoleTail(vm: string, bytes = 16 * 1024): { text: string; size: number } {
    return readTail(this.consolePath(vm), bytes);
  }

  /** The last `limit` audit events, of one package when `packageName` is given, oldest first. */
  async audit(options: {
    packageName?: string;
    limit: number;
  }): Promise<Record<string, unknown>[]> {
    const { text } = readTail(join(this.#home, 'audit.ndjson'), auditTailBytes);
    const lines = text.split('\n').slice(text.length >= auditTailBytes ? 1 : 0);
    const names = new Map<string, string>();
    for (const p of await this.#broker.listPackages(1000)) names.set(p.id, p.name);
    const events: Record<string, unknown>[] = [];
    for (const line of lines) {
      if (line.trim() === '') continue;
      let event: Record<string, unknown>;
      try {
        event = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // a line cut by a crash
      }
      const { spec, ...rest } = event;
      const id = String(rest['packageId']);
      if (typeof rest['name'] === 'string') names.set(id, rest['name']);
      const name = names.get(id);
      if (options.packageName !== undefined && name !== options.packageName) continue;
      const action = (spec as { action?: unknown } | undefined)?.action;
      events.push({
        ...rest,
        ...(name === undefined ? {} : { name }),
        ...(action === undefined ? {} : { action }),
      });
    }
    return events.slice(-options.limit);
  }

  async #state(): Promise<StateData> {
    return (
      (await readState(this.#statePath)) ?? {
        format: 'spin-state',
        version: 1,
        lineage: '',
        serial: 0,
        packages: {},
      }
    );
  }

  /** The newest broker run of each package name. */
  async #latestRuns(): Promise<Map<string, PackageSummary>> {
    const latest = new Map<string, PackageSummary>();
    for (const p of await this.#broker.listPackages(500)) {
      const seen = latest.get(p.name);
      if (seen === undefined || p.createdAt > seen.createdAt) latest.set(p.name, p);
    }
    return latest;
  }

  #fromRecord(pkg: string, id: string, r: CommandRecord): WebCommand {
    const c: WebCommand = {
      id,
      resource: r.resource,
      action: r.action,
      needs: r.needs,
      state: r.status,
      attempt: r.attempts,
    };
    if (r.startedAt !== undefined) {
      c.startedAt = Date.parse(r.startedAt);
      c.durationMs = Date.parse(r.finishedAt) - c.startedAt;
    }
    if (r.error !== undefined) c.error = `${r.error.message} [${r.error.code}]`;
    if (r.reason !== undefined) c.reason = r.reason;
    if (r.status === 'failed') c.outputTail = this.#outputTail(pkg, id, r.attempts);
    return c;
  }

  #fromBroker(pkg: string, run: PackageStatus, s: CommandStatus): WebCommand {
    const c: WebCommand = {
      id: s.id,
      resource: s.resource,
      action: s.action,
      needs: s.needs,
      state: s.state,
      attempt: s.attempt,
    };
    const key = `${run.id}/${s.id}`;
    const started = this.#started.get(key);
    if (started !== undefined) {
      c.startedAt = started;
      const finished = this.#finished.get(key);
      if (finished !== undefined) c.durationMs = finished - started;
    }
    if (s.error !== undefined) c.error = `${s.error.message} [${s.error.code}]`;
    if (s.reason !== undefined) c.reason = s.reason;
    if (s.state === 'failed') c.outputTail = this.#outputTail(pkg, s.id, s.attempt);
    return c;
  }

  /** The last lines of what an attempt printed (its log's `out` and `err` lines). */
  #outputTail(pkg: string, command: string, attempt: number): string[] {
    const dir = join(logsRoot(this.#home), logSegment(pkg), logSegment(command));
    const kept = keptAttempts(dir);
    const n = kept.includes(attempt) ? attempt : kept.at(-1);
    if (n === undefined) return [];
    const chunk = attemptChunk(dir, n, undefined);
    if (chunk.kind !== 'attempt') return [];
    return chunk.lines
      .filter((l) => l.tag === 'out' || l.tag === 'err')
      .slice(-outputTailLines)
      .map((l) => l.text);
  }
}

function isOpen(state: string): boolean {
  return state === 'staged' || state === 'enqueued' || state === 'running';
}

function countsOf(commands: WebCommand[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of commands) counts[c.state] = (counts[c.state] ?? 0) + 1;
  return counts;
}

/** A package's state from its recorded commands: failed if any failed, else succeeded. */
function recordedState(commands: WebCommand[]): string {
  if (commands.some((c) => c.state === 'failed')) return 'failed';
  return commands.every((c) => c.state === 'succeeded') ? 'succeeded' : 'partial';
}

function summaryOf(pkg: WebPackage): WebPackageSummary {
  const { commands, layout, ...summary } = pkg;
  return summary;
}

/** The last `bytes` of a file (empty when it does not exist) and its size. */
export function readTail(
  path: string,
  bytes: number,
  from?: number,
): { text: string; size: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return { text: '', size: 0 };
  }
  try {
    const size = fstatSync(fd).size;
    const start = from !== undefined && from <= size ? from : Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    const read = readSync(fd, buffer, 0, buffer.length, start);
    return { text: buffer.subarray(0, read).toString('utf8'), size: start + read };
  } finally {
    closeSync(fd);
  }
}
