import {
  budgetNow,
  formatMib,
  shortfalls,
  type AdmissionPolicy,
  type VmAsk,
} from '../agents/emulation/admission.js';
import { freeDiskMib } from '../agents/emulation/capacity.js';
import type { PlannedCommand, PlannedStart } from './planned-vms.js';

function ask(starts: readonly PlannedStart[]): VmAsk {
  return starts.reduce(
    (sum, s) => ({
      cpus: sum.cpus + (s.config?.cpus ?? 0),
      memoryMib: sum.memoryMib + (s.config?.memory ?? 0),
    }),
    { cpus: 0, memoryMib: 0 },
  );
}

function vmNames(starts: readonly PlannedStart[]): string {
  const names = starts.map((s) => s.config?.name ?? s.id);
  return `${names.length === 1 ? 'VM' : 'VMs'} ${names.join(', ')} ${names.length === 1 ? 'asks' : 'ask'}`;
}

/**
 * Warnings, one line each, for packages whose VMs cannot fit the node now: the VMs a run starts
 * (each package's, then all of them together when each package fits alone) against what is free,
 * counting the VMs that run and that the run does not start again. And packages whose new images
 * may grow past the free disk under `$SPIN_HOME` (images are sparse: they take space as the guest
 * writes). Nothing is refused here: a start that does not fit is refused when it runs.
 */
export async function fitWarnings(
  home: string,
  starts: readonly PlannedStart[],
  commands: readonly PlannedCommand[],
  policy: AdmissionPolicy,
): Promise<string[]> {
  const warnings: string[] = [];
  const sized = starts.filter((s) => s.config !== undefined);
  const packages = [...new Set(sized.map((s) => s.package))];
  if (packages.length > 0) {
    const budget = await budgetNow(home, policy, new Set(sized.map((s) => s.id)));
    let eachFits = true;
    for (const name of packages) {
      const own = sized.filter((s) => s.package === name);
      const missing = shortfalls(ask(own), budget);
      if (missing.length === 0) continue;
      eachFits = false;
      warnings.push(`package ${name} cannot fit: ${vmNames(own)} ${missing.join(', and ')}`);
    }
    const together = shortfalls(ask(sized), budget);
    if (eachFits && packages.length > 1 && together.length > 0) {
      warnings.push(
        `packages ${packages.join(', ')} cannot fit together: ${vmNames(sized)} ${together.join(', and ')}`,
      );
    }
  }
  const images = commands.filter(
    (c) =>
      c.command.resource === 'storage' &&
      c.command.action === 'create_image' &&
      c.item.action !== 'update',
  );
  if (images.length > 0) {
    const free = await freeDiskMib(home);
    for (const name of new Set(images.map((c) => c.package))) {
      const gib = images
        .filter((c) => c.package === name)
        .reduce((n, c) => n + Number(c.command.params['image_size'] ?? 0), 0);
      if (gib * 1024 > free) {
        warnings.push(
          `package ${name}: its new images may grow to ${formatMib(gib * 1024)}; ${formatMib(free)} is free under ${home}`,
        );
      }
    }
  }
  return warnings;
}
