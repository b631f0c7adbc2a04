import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeBudget, type AdmissionReport } from '../../src/core/vm-budget.js';
import { NodeRegistry, type Heartbeat } from '../../src/daemon/node-registry.js';
import { testDir } from '../support/spin-cli.js';

const gib = 1024 ** 3;

/** A node of 4 CPUs and 16 GiB (12 GiB available) running VM 1, under `policy`. */
const admission: AdmissionReport = {
  capacity: { cpus: 4, memoryMib: 16384, availableMib: 12288 },
  vms: [{ id: '1', cpus: 2, memoryMib: 2048, residentMib: 1024 }],
  policy: { cpuOvercommit: 2, memoryOvercommit: 1, reserveMemoryMib: 1024 },
};

/** A heartbeat of that node, or of an agent that reports no admission (`reports: false`). */
function beat(reports = true): Heartbeat {
  return {
    resources: ['emulation'],
    capacity: { cpus: 4, memoryBytes: 16 * gib, diskFreeBytes: gib, diskTotalBytes: 2 * gib },
    use: { load1: 0.5, memoryUsedBytes: 4 * gib, running: 0, vms: 1 },
    ...(reports ? { admission } : {}),
    intervalMs: 1000,
    host: 'nodeb.example',
    pid: 42,
  };
}

/** A registry whose clock the test sets. */
async function registry(): Promise<{ nodes: NodeRegistry; clock: { now: number } }> {
  const clock = { now: Date.UTC(2024, 0, 1, 12, 0, 0) };
  const nodes = new NodeRegistry(join(await testDir('spin-nodes-'), 'nodes.json'), () => clock.now);
  return { nodes, clock };
}

describe("a node's budget from its last heartbeat", () => {
  it("is admission's budget of what it reported, under its own agent's policy", async () => {
    const { nodes } = await registry();
    nodes.heartbeat('nodeb', beat());
    const known = nodes.budget('nodeb');
    expect(known).toEqual({
      state: 'reported',
      budget: nodeBudget(admission.capacity, admission.vms, admission.policy),
      diskFreeMib: 1024,
    });
    if (known.state !== 'reported') return;
    // 4 CPUs twice over, less VM 1's 2; 16 GiB less the 1 GiB kept and VM 1's 2 GiB, bounded
    // by the 12 GiB available less the 1 GiB VM 1 has not touched yet.
    expect(known.budget.freeCpus).toBe(6);
    expect(known.budget.freeMemoryMib).toBe(11264);
    expect(nodes.list()[0]?.freeForVms).toEqual({ cpus: 6, memoryMib: 11264 });
  });

  it('is not known for a node never heard of, nor for one whose agent reports none', async () => {
    const { nodes } = await registry();
    expect(nodes.budget('nodeb')).toEqual({ state: 'unknown', why: 'no-agent' });
    nodes.heartbeat('nodeb', beat(false));
    expect(nodes.budget('nodeb')).toEqual({ state: 'unknown', why: 'no-report' });
    expect(nodes.list()[0]?.freeForVms).toBeUndefined();
  });

  it('is gone once the node is offline, which says since when; back with its next heartbeat', async () => {
    const { nodes, clock } = await registry();
    nodes.heartbeat('nodeb', beat());
    const heard = clock.now;
    clock.now += 3 * 1000 + 1;
    expect(nodes.budget('nodeb')).toEqual({ state: 'offline', since: heard + 3000 });
    expect(nodes.list()[0]).toMatchObject({ state: 'offline' });
    expect(nodes.list()[0]?.freeForVms).toBeUndefined();
    nodes.heartbeat('nodeb', beat());
    expect(nodes.budget('nodeb').state).toBe('reported');
  });

  it('is known again after a restart of the coordinator only once the node reports again', async () => {
    const dir = await testDir('spin-nodes-');
    const clock = { now: Date.UTC(2024, 0, 1, 12, 0, 0) };
    const first = new NodeRegistry(join(dir, 'nodes.json'), () => clock.now);
    first.heartbeat('nodeb', beat());
    clock.now += 60_000;
    // nodes.json holds the node as it came online: the restarted coordinator knows it as offline.
    const second = new NodeRegistry(join(dir, 'nodes.json'), () => clock.now);
    expect(second.budget('nodeb').state).toBe('offline');
    second.heartbeat('nodeb', beat());
    expect(second.budget('nodeb').state).toBe('reported');
  });
});

describe('whether a node has an agent for a resource', () => {
  it('says so of a resource its agent does not serve', async () => {
    const { nodes } = await registry();
    nodes.heartbeat('nodeb', { ...beat(), resources: ['storage'] });
    expect(nodes.availability('nodeb', 'storage')).toEqual({ available: true });
    expect(nodes.availability('nodeb', 'emulation')).toEqual({
      available: false,
      why: 'its agent serves storage, not emulation',
    });
    expect(nodes.availability('nodec', 'storage')).toEqual({
      available: false,
      why: 'no agent has connected',
    });
  });

  it('counts what every live agent of the node serves, and forgets one whose heartbeats stopped', async () => {
    const { nodes, clock } = await registry();
    nodes.heartbeat('nodeb', { ...beat(), resources: ['storage'], pid: 1 });
    nodes.heartbeat('nodeb', { ...beat(), resources: ['emulation'], pid: 2 });
    expect(nodes.get('nodeb')?.resources).toEqual(['storage', 'emulation']);
    expect(nodes.availability('nodeb', 'storage')).toEqual({ available: true });
    // The storage agent (pid 1) goes silent; the emulation agent goes on.
    for (let i = 0; i < 4; i++) {
      clock.now += 1000;
      nodes.heartbeat('nodeb', { ...beat(), resources: ['emulation'], pid: 2 });
    }
    expect(nodes.get('nodeb')?.resources).toEqual(['emulation']);
    expect(nodes.availability('nodeb', 'storage')).toEqual({
      available: false,
      why: 'its agent serves emulation, not storage',
    });
  });
});
