import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { holdAdmissionLock } from '../../src/agents/emulation/admission-lock.js';
import {
  defaultAdmission,
  nodeBudget,
  shortfalls,
  type AdmissionPolicy,
  type NodeCapacity,
  type VmReservation,
} from '../../src/core/vm-budget.js';
import {
  cgroupLimits,
  cpusOfArg,
  measureNode,
  memoryOfArg,
  parseMeminfo,
  type CapacitySources,
} from '../../src/agents/emulation/capacity.js';
import { testDir } from '../support/spin-cli.js';

const gib = 1024 * 1024 * 1024;

/** A host described by files: its meminfo, its cgroup membership and a cgroup tree. */
async function describedCgroups(
  membership: string,
  files: Record<string, string>,
  meminfo = 'MemTotal:       24117248 kB\nMemFree:  1000 kB\nMemAvailable:   20971520 kB\n',
): Promise<CapacitySources> {
  const dir = await testDir('spin-cgroup-');
  const sources = {
    meminfo: join(dir, 'meminfo'),
    cgroup: join(dir, 'cgroup'),
    cgroupRoot: join(dir, 'sys'),
  };
  await writeFile(sources.meminfo, meminfo);
  await writeFile(sources.cgroup, membership);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(sources.cgroupRoot, path)), { recursive: true });
    await writeFile(join(sources.cgroupRoot, path), `${text}\n`);
  }
  return sources;
}

describe('node capacity', () => {
  it('reads MemTotal and MemAvailable, and stands in for MemAvailable on old kernels', () => {
    expect(
      parseMeminfo('MemTotal: 2048000 kB\nMemFree: 1024 kB\nMemAvailable: 1024000 kB\n'),
    ).toEqual({ totalMib: 2000, availableMib: 1000 });
    expect(parseMeminfo('MemTotal: 2048000 kB\nMemFree: 102400 kB\nCached: 204800 kB\n')).toEqual({
      totalMib: 2000,
      availableMib: 300,
    });
  });

  it('bounds memory and CPUs by a cgroup v2 limit, the tightest along the path', async () => {
    const sources = await describedCgroups('0::/app/web\n', {
      'app/memory.max': String(8 * gib),
      'app/memory.current': String(6 * gib),
      'app/web/memory.max': 'max',
      'app/web/cpu.max': '150000 100000',
      'cpu.max': 'max 100000',
    });
    expect(cgroupLimits(sources)).toEqual({
      memoryBytes: 8 * gib,
      memoryLeftBytes: 2 * gib,
      cpus: 1.5,
    });
    const node = measureNode(sources);
    expect(node).toEqual({
      cpus: Math.min(1.5, availableParallelism()),
      memoryMib: 8192,
      availableMib: 2048,
    });
  });

  it('reads cgroup v1 limits, and takes its "no limit" value for none', async () => {
    const limited = await describedCgroups('5:memory:/job\n3:cpu,cpuacct:/job\n', {
      'memory/job/memory.limit_in_bytes': String(4 * gib),
      'memory/job/memory.usage_in_bytes': String(gib),
      'memory/memory.limit_in_bytes': '9223372036854771712',
      'cpu,cpuacct/job/cpu.cfs_quota_us': '100000',
      'cpu,cpuacct/job/cpu.cfs_period_us': '100000',
      'cpu,cpuacct/cpu.cfs_quota_us': '-1',
      'cpu,cpuacct/cpu.cfs_period_us': '100000',
    });
    expect(cgroupLimits(limited)).toEqual({
      memoryBytes: 4 * gib,
      memoryLeftBytes: 3 * gib,
      cpus: 1,
    });
    // A path the mount does not show (a container without a cgroup namespace): its root counts.
    const unlimited = await describedCgroups('5:memory:/docker/abc\n', {
      'memory/memory.limit_in_bytes': '9223372036854771712',
    });
    expect(cgroupLimits(unlimited)).toEqual({});
    expect(measureNode(unlimited).memoryMib).toBe(23552);
  });

  it("reads a running qemu's memory and CPUs from its -m and -smp", () => {
    expect(memoryOfArg('512')).toBe(512);
    expect(memoryOfArg('2G')).toBe(2048);
    expect(memoryOfArg('size=1024M,slots=2')).toBe(1024);
    expect(memoryOfArg('lots')).toBeUndefined();
    expect(cpusOfArg('4')).toBe(4);
    expect(cpusOfArg('cpus=2,sockets=1')).toBe(2);
    expect(cpusOfArg(undefined)).toBeUndefined();
  });
});

describe('what fits', () => {
  const node: NodeCapacity = { cpus: 4, memoryMib: 23552, availableMib: 21000 };
  const running: VmReservation[] = [
    { id: '1', cpus: 2, memoryMib: 8192, residentMib: 8300 },
    { id: '2', cpus: 2, memoryMib: 8100, residentMib: 8000 },
  ];

  it('names what was asked and what is free, and the VMs that hold the rest', () => {
    const budget = nodeBudget(node, running, defaultAdmission);
    expect(budget.freeMemoryMib).toBe(23552 - 16292);
    expect(shortfalls({ cpus: 1, memoryMib: 16384 }, budget)).toEqual([
      '16384 MiB of memory; 7260 MiB is free (23 GiB total, 15.9 GiB reserved by VMs 1, 2)',
    ]);
    expect(shortfalls({ cpus: 1, memoryMib: 7260 }, budget)).toEqual([]);
  });

  it('counts CPUs overcommitted 4x by default, and as many times as asked', () => {
    const budget = nodeBudget(node, running, defaultAdmission);
    expect(budget.freeCpus).toBe(12);
    expect(shortfalls({ cpus: 13, memoryMib: 16 }, budget)).toEqual([
      '13 CPUs; 12 are free (4 CPUs overcommitted 4x, 4 reserved by VMs 1, 2)',
    ]);
    const strict: AdmissionPolicy = { ...defaultAdmission, cpuOvercommit: 1 };
    expect(shortfalls({ cpus: 1, memoryMib: 16 }, nodeBudget(node, running, strict))).toEqual([
      '1 CPU; 0 are free (4 CPUs overcommitted 1x, 4 reserved by VMs 1, 2)',
    ]);
  });

  it('holds back memory for the host, and lets memory be overcommitted only when asked', () => {
    const reserved = { ...defaultAdmission, reserveMemoryMib: 4096 };
    expect(nodeBudget(node, running, reserved).freeMemoryMib).toBe(23552 - 4096 - 16292);
    const overcommitted = { ...defaultAdmission, memoryOvercommit: 1.5 };
    const budget = nodeBudget(node, running, overcommitted);
    expect(budget.freeMemoryMib).toBe(Math.floor(23552 * 1.5) - 16292);
    expect(shortfalls({ cpus: 1, memoryMib: 32768 }, budget)[0]).toContain(
      '(23 GiB total, overcommitted 1.5x, 15.9 GiB reserved by VMs 1, 2)',
    );
  });

  it('keeps what other programs use out of reach: the kernel must have it available', () => {
    // Other programs hold 10 GiB: 4.9 GiB is available, of which VM 1 may still take 100 MiB.
    const busy = { ...node, availableMib: 5000 };
    const one = [{ id: '1', cpus: 2, memoryMib: 8192, residentMib: 8092 }];
    const budget = nodeBudget(busy, one, defaultAdmission);
    expect(budget.freeMemoryMib).toBe(4900);
    expect(shortfalls({ cpus: 1, memoryMib: 6000 }, budget)).toEqual([
      '6000 MiB of memory; 4900 MiB is free (23 GiB total, 8 GiB reserved by VM 1; the kernel has 4.9 GiB available now, of which running VMs may still take 100 MiB)',
    ]);
  });
});

describe('the admission lock', () => {
  it('lets one holder in at a time, the next in once it is released', async () => {
    const root = await testDir('spin-admission-');
    const signal = new AbortController().signal;
    const release = await holdAdmissionLock(root, signal);
    let second = false;
    const next = holdAdmissionLock(root, signal).then((r) => {
      second = true;
      return r;
    });
    // However long the first holds it, the second waits: a tenth of a second of trying is plenty.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(second).toBe(false);
    release();
    (await next)();
    expect(second).toBe(true);
  });

  it('gives up waiting when the start is cancelled', async () => {
    const root = await testDir('spin-admission-');
    const release = await holdAdmissionLock(root, new AbortController().signal);
    const cancel = new AbortController();
    const waiting = holdAdmissionLock(root, cancel.signal);
    cancel.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'cancelled' });
    release();
  });
});
