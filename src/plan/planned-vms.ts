import { join } from 'node:path';
import {
  parseVmConfig,
  readVmConfig,
  vmFiles,
  type VmConfig,
} from '../agents/emulation/vm-config.js';
import { defaults } from '../core/defaults.js';
import type { CommandSpec } from '../core/package.js';
import type { PackagePlan, PlanItem } from './plan.js';

/** A command that a run carries out, with its package and plan line. */
export interface PlannedCommand {
  package: string;
  file: string;
  command: CommandSpec;
  item: PlanItem;
}

/** A VM that a run starts: its `emulation.start`, and the config it starts from. */
export interface PlannedStart extends PlannedCommand {
  id: string;
  /** Its config: its package's `write_config` of that id, else the stored one (if any). */
  config?: VmConfig;
  /** The `write_config` command of the package that says the config, if one does. */
  configCommand?: CommandSpec;
}

/** Which commands of each package a run carries out: `selectCommands`' answer. */
export type RunSelection = ReadonlyMap<string, ReadonlySet<string>>;

/** The commands of `plans` that `runs` carries out, on every node. */
function selectedCommands(plans: readonly PackagePlan[], runs: RunSelection): PlannedCommand[] {
  return plans.flatMap((plan) =>
    plan.items.flatMap((item) => {
      const command = item.command;
      if (command === undefined || runs.get(plan.name)?.has(item.id) !== true) return [];
      return [{ package: plan.name, file: plan.file, command, item }];
    }),
  );
}

/**
 * The commands of `plans` that `runs` carries out, on this node (`local`: commands for another
 * node run where its agents are, and what they need is theirs to have).
 */
export function plannedCommands(
  plans: readonly PackagePlan[],
  runs: RunSelection,
): PlannedCommand[] {
  return selectedCommands(plans, runs).filter((c) => c.command.node === defaults.command.node);
}

function isAction(command: CommandSpec, resource: string, action: string): boolean {
  return command.resource === resource && command.action === action;
}

/**
 * The VMs `runs` starts, on every node, each with the config it will start from: what its
 * package's `write_config` of that VM on that node says (whether or not it runs now), else, on
 * this node, the config stored under `$SPIN_HOME/vms/<id>/` (written by another package, or
 * earlier). Another node's stored configs are on its disk: a start there without its
 * `write_config` in the package has no config here.
 */
export async function plannedStarts(
  home: string,
  plans: readonly PackagePlan[],
  runs: RunSelection,
): Promise<PlannedStart[]> {
  const starts = selectedCommands(plans, runs).filter((c) =>
    isAction(c.command, 'emulation', 'start'),
  );
  return Promise.all(
    starts.map(async (start): Promise<PlannedStart> => {
      const id = String(start.command.params['id']);
      const node = start.command.node;
      const plan = plans.find((p) => p.name === start.package);
      const configCommand = plan?.items
        .map((item) => item.command)
        .find(
          (c): c is CommandSpec =>
            c !== undefined &&
            isAction(c, 'emulation', 'write_config') &&
            c.node === node &&
            String(c.params['id']) === id,
        );
      let config: VmConfig | undefined;
      try {
        if (configCommand !== undefined) config = parseVmConfig(configCommand.params['vm']);
        else if (node === defaults.command.node) config = await storedConfig(home, id);
      } catch {
        config = undefined; // what cannot be read is the start's to report
      }
      return {
        ...start,
        id,
        ...(config === undefined ? {} : { config }),
        ...(configCommand === undefined ? {} : { configCommand }),
      };
    }),
  );
}

/** The stored config of VM `id` (an id the schema checked: a plain name). */
function storedConfig(home: string, id: string): Promise<VmConfig | undefined> {
  return readVmConfig(vmFiles(id, join(home, 'vms', id)));
}
