import { readdirSync, readFileSync, realpathSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { errnoOf } from '../fs-util.js';
import { vmIdPattern, type NodeCapacity, type VmReservation } from '../../core/vm-budget.js';
import { parseVmConfig, vmFiles } from './vm-config.js';
import { findQemu } from './vm-process.js';

/** Where the facts of the host are read; the real files unless a caller (a test) names others. */
export interface CapacitySources {
  meminfo: string;
  /** This process's cgroup membership (`/proc/self/cgroup`). */
  cgroup: string;
  /** Where the cgroup hierarchies are mounted. */
  cgroupRoot: string;
}

/** The files of this host. */
export const hostCapacitySources: CapacitySources = {
  meminfo: '/proc/meminfo',
  cgroup: '/proc/self/cgroup',
  cgroupRoot: '/sys/fs/cgroup',
};

const mib = 1024 * 1024;

/** `MemTotal` and `MemAvailable` of a `/proc/meminfo` text, in MiB (0 when a line is missing). */
export function parseMeminfo(text: string): { totalMib: number; availableMib: number } {
  const kib = (key: string): number => {
    const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    return match === null ? 0 : Number(match[1]);
  };
  const total = kib('MemTotal');
  // Kernels before 3.14 have no MemAvailable: free memory and the page cache stand in for it.
  const available = /^MemAvailable:/m.test(text)
    ? kib('MemAvailable')
    : kib('MemFree') + kib('Cached');
  return { totalMib: Math.floor(total / 1024), availableMib: Math.floor(available / 1024) };
}

/** The limits a cgroup (v1 or v2) puts on this process; undefined where there is none. */
export interface CgroupLimits {
  memoryBytes?: number;
  /** The least, over the limited cgroups of the path, of the limit less the cgroup's usage. */
  memoryLeftBytes?: number;
  cpus?: number;
}

/**
 * A small file of /proc or /sys, or undefined when it cannot be read. Read synchronously: the
 * kernel makes up these files in memory, in microseconds, less than a round trip through
 * libuv's thread pool would cost.
 */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** A directory and each of its parents up to (and including) `root`. */
function upTo(root: string, path: string): string[] {
  const dirs: string[] = [];
  for (let dir = join(root, path); dir.startsWith(root); dir = dirname(dir)) {
    dirs.push(dir);
    if (dir === root) break;
  }
  return dirs;
}

// v1 reports "no limit" as the largest page-aligned signed 64-bit value.
const unlimitedV1 = 2 ** 60;

/**
 * The memory and CPU limits of this process's cgroups, the tightest of each along the path from
 * its cgroup up to the root of the hierarchy: cgroup v2 (`memory.max`, `memory.current`,
 * `cpu.max`) and v1 (`memory.limit_in_bytes`, `memory.usage_in_bytes`, `cpu.cfs_quota_us` over
 * `cpu.cfs_period_us`). Where the process's cgroup path is not under the mount (a container
 * without a cgroup namespace), the levels that exist are read, the mount's root among them.
 */
export function cgroupLimits(sources: CapacitySources): CgroupLimits {
  const membership = readText(sources.cgroup) ?? '';
  const limits: CgroupLimits = {};
  const memory = (limit: number, usage: number | undefined): void => {
    limits.memoryBytes = Math.min(limits.memoryBytes ?? Infinity, limit);
    if (usage !== undefined)
      limits.memoryLeftBytes = Math.min(limits.memoryLeftBytes ?? Infinity, limit - usage);
  };
  const cpu = (quota: number, period: number): void => {
    if (quota > 0 && period > 0) limits.cpus = Math.min(limits.cpus ?? Infinity, quota / period);
  };
  for (const line of membership.split('\n')) {
    const [, controllers = '', path = '/'] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    const names = controllers.split(',');
    if (controllers === '') {
      for (const dir of upTo(sources.cgroupRoot, path)) {
        const max = readText(join(dir, 'memory.max'));
        if (max !== undefined && max !== 'max') {
          const current = readText(join(dir, 'memory.current'));
          memory(Number(max), current === undefined ? undefined : Number(current));
        }
        const [quota = 'max', period = '100000'] = readText(join(dir, 'cpu.max'))?.split(' ') ?? [
          'max',
        ];
        if (quota !== 'max') cpu(Number(quota), Number(period));
      }
    }
    if (names.includes('memory')) {
      for (const dir of upTo(join(sources.cgroupRoot, 'memory'), path)) {
        const limit = Number(readText(join(dir, 'memory.limit_in_bytes')));
        if (!Number.isFinite(limit) || limit <= 0 || limit >= unlimitedV1) continue;
        const usage = Number(readText(join(dir, 'memory.usage_in_bytes')));
        memory(limit, Number.isFinite(usage) ? usage : undefined);
      }
    }
    if (names.includes('cpu')) {
      for (const dir of upTo(join(sources.cgroupRoot, controllers), path)) {
        const quota = Number(readText(join(dir, 'cpu.cfs_quota_us')));
        const period = Number(readText(join(dir, 'cpu.cfs_period_us')));
        if (Number.isFinite(quota) && Number.isFinite(period)) cpu(quota, period);
      }
    }
  }
  return limits;
}

/**
 * Measures the node: its CPUs and memory, each bounded by the cgroups this process runs in (the
 * qemu processes spin starts run in them too). A few small reads of /proc and /sys, synchronous.
 */
export function measureNode(sources: CapacitySources = hostCapacitySources): NodeCapacity {
  const meminfo = readText(sources.meminfo);
  const limits = cgroupLimits(sources);
  const { totalMib, availableMib } = parseMeminfo(meminfo ?? '');
  const limitMib = limits.memoryBytes === undefined ? Infinity : limits.memoryBytes / mib;
  const leftMib = limits.memoryLeftBytes === undefined ? Infinity : limits.memoryLeftBytes / mib;
  return {
    cpus: Math.min(availableParallelism(), limits.cpus ?? Infinity),
    memoryMib: Math.floor(Math.min(totalMib, limitMib)),
    availableMib: Math.max(0, Math.floor(Math.min(availableMib, leftMib))),
  };
}

/**
 * Free disk in MiB for this user on the filesystem that holds `path` (its nearest existing
 * ancestor when it does not exist yet).
 */
export async function freeDiskMib(path: string): Promise<number> {
  for (let dir = path; ; dir = dirname(dir)) {
    try {
      const stats = await statfs(dir);
      return Math.floor((stats.bavail * stats.bsize) / mib);
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT' || dirname(dir) === dir) throw error;
    }
  }
}

/** The value of `flag` in an argv (`-m 512` → `512`). */
function flagValue(argv: readonly string[], flag: string): string | undefined {
  const at = argv.indexOf(flag);
  return at < 0 ? undefined : argv[at + 1];
}

/** qemu's `-m` (MiB, or with an M/G suffix, or `size=…`) in MiB; undefined if unreadable. */
export function memoryOfArg(value: string | undefined): number | undefined {
  const match = /^(?:size=)?(\d+)([MG]?)(?:,|$)/i.exec(value ?? '');
  if (match === null) return undefined;
  return Number(match[1]) * (match[2]?.toUpperCase() === 'G' ? 1024 : 1);
}

/** qemu's `-smp` (`2`, or `cpus=2,…`) as a number of CPUs; undefined if unreadable. */
export function cpusOfArg(value: string | undefined): number | undefined {
  const match = /^(?:cpus=)?(\d+)(?:,|$)/.exec(value ?? '');
  return match === null ? undefined : Number(match[1]);
}

function residentMib(pid: number): number {
  const status = readText(`/proc/${String(pid)}/status`);
  const kib = /^VmRSS:\s+(\d+) kB/m.exec(status ?? '');
  return kib === null ? 0 : Math.floor(Number(kib[1]) / 1024);
}

const isVmId = new RegExp(vmIdPattern);

/** The memory and CPUs of a stored VM config, or undefined when it cannot be read. */
function storedSize(configFile: string): { memory: number; cpus: number } | undefined {
  try {
    return parseVmConfig(JSON.parse(readText(configFile) ?? ''));
  } catch {
    return undefined;
  }
}

/**
 * What the running VMs of a spin home hold, one entry per qemu that runs (see `findQemu`), read
 * from the command line it runs with (`-m`, `-smp`): a config rewritten since holds only from
 * the next start. Its stored config stands in where the command line cannot be read. Synchronous
 * (a directory, a pid file per VM, and /proc): a few microseconds a VM.
 */
export function runningVms(home: string): VmReservation[] {
  let root: string;
  let entries;
  try {
    root = realpathSync(join(home, 'vms'));
    entries = readdirSync(root, { withFileTypes: true });
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return [];
    throw error;
  }
  const found: VmReservation[] = [];
  for (const entry of entries) {
    // Only a VM id names a VM's directory: anything else there is not one of spin's VMs.
    if (!entry.isDirectory() || !isVmId.test(entry.name)) continue;
    const id = entry.name;
    const files = vmFiles(id, join(root, id));
    const qemu = findQemu(files.pid);
    if (qemu === undefined) continue;
    const argv = (readText(`/proc/${String(qemu.pid)}/cmdline`) ?? '').split('\0');
    let memoryMib = memoryOfArg(flagValue(argv, '-m'));
    let cpus = cpusOfArg(flagValue(argv, '-smp'));
    if (memoryMib === undefined || cpus === undefined) {
      const config = storedSize(files.config);
      memoryMib ??= config?.memory ?? 0;
      cpus ??= config?.cpus ?? 1;
    }
    found.push({ id, cpus, memoryMib, residentMib: residentMib(qemu.pid) });
  }
  return found.sort((a, b) => compareIds(a.id, b.id));
}

/** VM ids in a natural order: `2` before `10`, names after numbers. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
