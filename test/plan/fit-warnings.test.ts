import { describe, expect, it } from 'vitest';
import type { CommandSpec } from '../../src/core/package.js';
import {
  nodeBudget,
  type AdmissionPolicy,
  type ReportedBudget,
  type VmReservation,
} from '../../src/core/vm-budget.js';
import { timeOfDay } from '../../src/core/duration.js';
import { fitWarnings, nodeFitWarnings } from '../../src/plan/fit-warnings.js';
import type { PackagePlan } from '../../src/plan/plan.js';
import {
  plannedStarts,
  type PlannedCommand,
  type PlannedStart,
  type RunSelection,
} from '../../src/plan/planned-vms.js';
import { testDir } from '../support/spin-cli.js';

function command(id: string, node: string, action: string, params: object): CommandSpec {
  return {
    id,
    resource: 'emulation',
    action,
    params: { ...params },
    needs: [],
    node,
    timeoutMs: 60_000,
    retries: 0,
  };
}

/** A package that writes the config of VM `vm` (its memory in MiB) on `node` and starts it. */
function vmPackage(name: string, node: string, vm: string, memory: number, cpus = 1): PackagePlan {
  const config = command('config', node, 'write_config', {
    id: vm,
    vm: { name: vm, cpus, memory, images: [{ volume: 'disks', path: `${vm}.raw` }] },
  });
  const start = command('start', node, 'start', { id: vm });
  return {
    name,
    file: `${name}.spin.yaml`,
    items: [config, start].map((c) => ({ id: c.id, action: 'create', reason: '', command: c })),
  };
}

/** Every command of every plan runs. */
function all(plans: readonly PackagePlan[]): RunSelection {
  return new Map(plans.map((p) => [p.name, new Set(p.items.map((i) => i.id))]));
}

/** The VM starts of `plans`, all of whose commands run (no VM runs on this machine's side). */
async function startsOf(plans: readonly PackagePlan[]): Promise<PlannedStart[]> {
  return plannedStarts(await testDir('spin-fit-'), plans, all(plans));
}

const policy: AdmissionPolicy = { cpuOvercommit: 1, memoryOvercommit: 1, reserveMemoryMib: 0 };

/** A node of 4 CPUs and 8 GiB, all of it available, running `vms`. */
function reported(vms: VmReservation[] = [], own = policy): ReportedBudget {
  return {
    state: 'reported',
    budget: nodeBudget({ cpus: 4, memoryMib: 8192, availableMib: 8192 }, vms, own),
  };
}

describe('fit against the budget a node reported', () => {
  it('checks each package, then the packages together, per node', async () => {
    const home = await testDir('spin-fit-');
    const plans = [
      vmPackage('a', 'nodeb', 'web', 5000),
      vmPackage('b', 'nodeb', 'db', 5000),
      vmPackage('c', 'nodec', 'cache', 5000),
    ];
    const asked: (readonly string[])[] = [];
    const warnings = await fitWarnings({
      home,
      starts: await plannedStarts(home, plans, all(plans)),
      commands: [],
      policy,
      reported: (nodes) => {
        asked.push(nodes);
        return Promise.resolve(new Map(nodes.map((node) => [node, reported()])));
      },
    });
    // a and b each fit nodeb, not together; c is alone on nodec, where it fits.
    expect(warnings).toEqual([
      'packages a, b cannot fit together on node nodeb: VMs web, db ask 10000 MiB of memory; 8192 MiB is free (8 GiB total)',
    ]);
    // The coordinator is asked once, about both nodes.
    expect(asked).toEqual([['nodeb', 'nodec']]);
  });

  it("names the node, and counts its running VMs under the node's own policy", async () => {
    const starts = await startsOf([vmPackage('p', 'nodeb', 'web', 16384, 2)]);
    const running = [{ id: '1', cpus: 2, memoryMib: 4096, residentMib: 4096 }];
    const kept = { ...policy, reserveMemoryMib: 1024 };
    expect(nodeFitWarnings('nodeb', starts, reported(running, kept))).toEqual([
      'package p cannot fit on node nodeb: VM web asks 16384 MiB of memory; 3072 MiB is free (8 GiB total, 1 GiB kept for the host, 4 GiB reserved by VM 1)',
    ]);
    // The same VM running already (started again) is not counted against itself.
    const again = [{ id: 'web', cpus: 2, memoryMib: 16384, residentMib: 100 }];
    const roomy = nodeBudget({ cpus: 8, memoryMib: 32768, availableMib: 16484 }, again, policy);
    expect(nodeFitWarnings('nodeb', starts, { state: 'reported', budget: roomy })).toEqual([]);
  });

  it('says why a node cannot be checked: offline since when, or its capacity not known', async () => {
    const starts = await startsOf([vmPackage('p', 'nodeb', 'web', 512)]);
    const since = Date.UTC(2024, 0, 1, 12, 3, 10);
    expect(nodeFitWarnings('nodeb', starts, { state: 'offline', since })).toEqual([
      `package p: cannot check whether VM web fits on node nodeb: it is offline since ${timeOfDay(since)}`,
    ]);
    expect(nodeFitWarnings('nodeb', starts, { state: 'unknown', why: 'no-agent' })).toEqual([
      'package p: cannot check whether VM web fits on node nodeb: its capacity is not known (no agent has connected)',
    ]);
    expect(nodeFitWarnings('nodeb', starts, { state: 'unknown', why: 'no-report' })[0]).toContain(
      'its capacity is not known (its agent does not report it)',
    );
  });

  it('checks new images against the free disk of their own node, as it reported it', async () => {
    const home = await testDir('spin-fit-');
    const image = (pkg: string, node: string, gib: number): PlannedCommand => {
      const spec: CommandSpec = {
        ...command('img', node, 'create_image', { volume: 'v', image: 'i.raw', image_size: gib }),
        resource: 'storage',
      };
      return {
        package: pkg,
        file: `${pkg}.spin.yaml`,
        command: spec,
        item: { id: 'img', action: 'create', reason: '', command: spec },
      };
    };
    const { budget } = reported() as Extract<ReportedBudget, { state: 'reported' }>;
    const room = (diskFreeMib: number): ReportedBudget => ({
      state: 'reported',
      budget,
      diskFreeMib,
    });
    const warnings = await fitWarnings({
      home,
      starts: [],
      // Within this machine's disk, beyond what nodeb reported; nodec is not known.
      commands: [image('here', 'local', 1), image('big', 'nodeb', 8), image('far', 'nodec', 8)],
      policy,
      reported: () =>
        Promise.resolve(
          new Map<string, ReportedBudget>([
            ['nodeb', room(4096)],
            ['nodec', { state: 'unknown', why: 'no-agent' }],
          ]),
        ),
    });
    expect(warnings).toEqual([
      'package big: its new images may grow to 8 GiB; 4 GiB is free under the $SPIN_HOME of node nodeb',
    ]);
  });

  it('says once, for every node, that nothing can be checked without a coordinator to ask', async () => {
    const home = await testDir('spin-fit-');
    const plans = [
      vmPackage('a', 'nodeb', 'web', 512),
      vmPackage('b', 'nodeb', 'db', 512),
      vmPackage('c', 'nodec', 'cache', 512),
    ];
    const warnings = await fitWarnings({
      home,
      starts: await plannedStarts(home, plans, all(plans)),
      commands: [],
      policy,
      reported: (nodes) =>
        Promise.resolve(
          new Map(
            nodes.map((node): [string, ReportedBudget] => [
              node,
              { state: 'unknown', why: 'no-coordinator' },
            ]),
          ),
        ),
    });
    expect(warnings).toEqual([
      'cannot check whether VMs web, db, cache fit on nodes nodeb, nodec: no spin daemon runs here to ask what they reported; plan with --nats',
    ]);
  });

  it("takes a VM's config from its package's write_config on the same node only", async () => {
    const home = await testDir('spin-fit-');
    const plan = vmPackage('p', 'nodeb', 'web', 512);
    // The package writes VM web's config for nodec, and starts web on nodeb: nodeb's config is
    // on nodeb's disk, not known here.
    plan.items[0]!.command!.node = 'nodec';
    const [start] = await plannedStarts(home, [plan], all([plan]));
    expect(start?.config).toBeUndefined();
    expect(start?.command.node).toBe('nodeb');
  });
});
