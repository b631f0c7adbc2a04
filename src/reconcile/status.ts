import { SpinError } from '../core/errors.js';
import { AgentHost } from '../executor/agent-host.js';
import { readState } from './state-file.js';
import type { CommandRecord, StateData } from '../core/state-types.js';
import { gaveUpMessage, supervisionView, type SupervisionView } from './vm-supervision-view.js';

/** One command as `spin status` shows it. */
export interface CommandView {
  id: string;
  resource: string;
  action: string;
  status: CommandRecord['status'];
  finishedAt: string;
  attempts: number;
  error?: string;
  /** Why a skipped or cancelled command did not run (`needs 'b', which failed`). */
  reason?: string;
  /** For VMs (emulation start): whether it runs now. */
  vm?: 'running' | 'stopped';
  /** For VMs: who supervises it, its restarts and last exit. */
  supervision?: SupervisionView;
}

/** One package as `spin status` shows it. */
export interface PackageView {
  name: string;
  file: string;
  appliedAt: string;
  commands: CommandView[];
}

/**
 * The packages of the state file (all, or the named one) with every command's last result, and
 * for each VM whether it runs now, asked of the emulation agent. Reads without taking the lock:
 * the state file is replaced atomically, so a reader sees the old or the new one.
 */
export async function stateStatus(options: {
  home: string;
  statePath: string;
  name?: string;
}): Promise<{ serial: number; packages: PackageView[] }> {
  const data: StateData = (await readState(options.statePath)) ?? {
    format: 'spin-state',
    version: 1,
    lineage: '',
    serial: 0,
    packages: {},
  };
  const names = options.name === undefined ? Object.keys(data.packages).sort() : [options.name];
  if (options.name !== undefined && !Object.hasOwn(data.packages, options.name)) {
    throw new SpinError('not_found', `no package '${options.name}' in ${options.statePath}`, {
      suggestions: [
        Object.keys(data.packages).length > 0
          ? `known: ${Object.keys(data.packages).join(', ')}`
          : 'nothing has been applied yet',
      ],
    });
  }
  const host = new AgentHost(options.home, { allowShell: false });
  const packages: PackageView[] = [];
  for (const name of names) {
    const pkg = data.packages[name];
    if (pkg === undefined) continue;
    const commands: CommandView[] = [];
    for (const [id, record] of Object.entries(pkg.commands)) {
      const view: CommandView = {
        id,
        resource: record.resource,
        action: record.action,
        status: record.status,
        finishedAt: record.finishedAt,
        attempts: record.attempts,
      };
      if (record.error) view.error = `${record.error.message} [${record.error.code}]`;
      if (record.reason !== undefined) view.reason = record.reason;
      if (record.resource === 'emulation' && record.action === 'start') {
        const seen = await host.observe(record).catch(() => undefined);
        if (seen !== undefined) view.vm = seen.present ? 'running' : 'stopped';
        const supervision = await supervisionView(host.roots, record.params);
        if (supervision !== undefined) view.supervision = supervision;
        // A VM its supervisor gave up on: the start no longer holds, as a failure would say.
        if (supervision?.state === 'gave-up' && view.vm !== 'running') {
          view.status = 'failed';
          view.error = gaveUpMessage(supervision);
        }
      }
      commands.push(view);
    }
    packages.push({ name, file: pkg.file, appliedAt: pkg.appliedAt, commands });
  }
  return { serial: data.serial, packages };
}
