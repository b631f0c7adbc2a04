import * as Flags from '@oclif/core/flags';
import type { AdmissionPolicy } from '../core/vm-budget.js';
import { defaults } from '../core/defaults.js';
import { SpinError } from '../core/errors.js';

function ratio(flag: string): (input: string) => Promise<number> {
  return (input) => {
    const value = Number(input);
    if (!/^\d+(\.\d+)?$/.test(input) || value < 1 || value > 100) {
      throw new SpinError(
        'usage',
        `${flag}: '${input}' is not a ratio from 1 to 100 (e.g. 1.5, 4)`,
      );
    }
    return Promise.resolve(value);
  };
}

const units: Record<string, number> = { '': 1, m: 1, mib: 1, g: 1024, gib: 1024 };

/** A size in MiB: `512`, `512M`, `2G`, `1.5GiB`. */
function mebibytes(input: string): Promise<number> {
  const match = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(input.trim());
  const unit = units[match?.[2]?.toLowerCase() ?? 'x'];
  if (match === null || unit === undefined) {
    throw new SpinError(
      'usage',
      `--reserve-memory: '${input}' is not a size like 512M or 2G (a bare number is MiB)`,
    );
  }
  return Promise.resolve(Math.round(Number(match[1]) * unit));
}

/**
 * The flags that say how much of the node VM starts may take, on every command whose agents
 * start VMs (`spin apply`, `spin watch`, `spin daemon start|run`, `spin agent`) and on `spin plan`,
 * whose warnings count with them.
 */
export const admissionFlags = {
  'cpu-overcommit': Flags.custom<number>({
    description: `VMs' CPUs may add up to this many times the node's CPUs [default: ${String(defaults.admission.cpuOvercommit)}]`,
    parse: ratio('--cpu-overcommit'),
  })(),
  'memory-overcommit': Flags.custom<number>({
    description:
      "VMs' memory may add up to this many times the node's memory [default: 1, no overcommit]",
    parse: ratio('--memory-overcommit'),
  })(),
  'reserve-memory': Flags.custom<number>({
    description: 'memory kept for the host, never given to VMs, e.g. 2G or 512M [default: 0]',
    parse: mebibytes,
  })(),
};

type AdmissionFlagValues = {
  [K in keyof typeof admissionFlags]?: number | undefined;
};

/** The policy the flags ask for; defaults for those not given. */
export function admissionPolicy(flags: AdmissionFlagValues): AdmissionPolicy {
  return {
    cpuOvercommit: flags['cpu-overcommit'] ?? defaults.admission.cpuOvercommit,
    memoryOvercommit: flags['memory-overcommit'] ?? defaults.admission.memoryOvercommit,
    reserveMemoryMib: flags['reserve-memory'] ?? defaults.admission.reserveMemoryMib,
  };
}

/** The flags given, as arguments for another spin process (`spin daemon start` → `run`). */
export function admissionArgs(flags: AdmissionFlagValues): string[] {
  return Object.entries(flags).flatMap(([name, value]) =>
    name in admissionFlags && value !== undefined ? [`--${name}`, String(value)] : [],
  );
}
