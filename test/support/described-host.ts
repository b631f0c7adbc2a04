import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostFiles, type HostFiles } from '../../src/agents/emulation/accel.js';
import { testDir } from './spin-cli.js';

/**
 * A host described by files, for the emulation agent's accelerator decision: a two-core CPU whose
 * cpuinfo `flags` hold `flags` (say `vmx`, `svm`, or nothing), and a KVM device that opens for
 * reading and writing (a plain file, as good as the node for that check). The boot id is the real
 * one. Removed when the test finishes.
 */
export async function describedHost(flags: string): Promise<HostFiles> {
  const dir = await testDir('spin-host-');
  const cpuinfo = join(dir, 'cpuinfo');
  const kvm = join(dir, 'kvm');
  const cpu = (n: number): string =>
    `processor\t: ${String(n)}\nmodel name\t: Test CPU\n` +
    `flags\t\t: fpu vme de pse tsc msr ${flags} hypervisor lahf_lm\n\n`;
  await writeFile(cpuinfo, cpu(0) + cpu(1));
  await writeFile(kvm, '');
  return { cpuinfo, kvm, bootId: hostFiles.bootId };
}
