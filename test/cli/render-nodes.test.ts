import { describe, expect, it } from 'vitest';
import { renderNodes } from '../../src/cli/render-nodes.js';
import { timeOfDay } from '../../src/core/duration.js';
import type { NodeStatus } from '../../src/daemon/node-registry.js';

const gib = 1024 ** 3;
const now = Date.UTC(2024, 0, 1, 12, 0, 0);

function node(name: string, more: Partial<NodeStatus>): NodeStatus {
  return {
    name,
    state: 'online',
    firstSeenAt: now - 60_000,
    lastHeartbeatAt: now - 2_000,
    resources: ['storage', 'emulation'],
    capacity: { cpus: 4, memoryBytes: 16 * gib, diskFreeBytes: 50 * gib, diskTotalBytes: gib },
    use: { load1: 0.25, memoryUsedBytes: 4 * gib, running: 1, vms: 2 },
    intervalMs: 5000,
    host: `${name}.example`,
    pid: 7,
    ...more,
  };
}

describe('spin nodes, the table', () => {
  it('shows what each node has free for VMs beside its capacity and running VMs', () => {
    const lines = renderNodes(
      [
        node('nodea', { freeForVms: { cpus: 12, memoryMib: 11264 } }),
        node('nodeb', { freeForVms: { cpus: 1, memoryMib: 0 } }),
        node('nodec', { state: 'offline', offlineSince: now - 1000 }),
      ],
      now,
    );
    expect(lines[0]).toMatch(
      /^NODE +STATE +HEARTBEAT +CPU +MEMORY \(GiB\) +DISK \(GiB\) +VMS +FREE FOR VMS +RESOURCES$/,
    );
    expect(lines[1]).toMatch(
      /^nodea +online +2\.0s ago +1 running, load 0\.25\/4 +4\.0\/16\.0 +50\.0 free +2 +12 CPUs, 11 GiB +storage,emulation$/,
    );
    expect(lines[2]).toMatch(/ 2 +1 CPU, 0 MiB +storage,emulation$/);
    expect(lines[3]).toMatch(
      new RegExp(`^nodec +offline since ${timeOfDay(now - 1000)} .* 2 +- +storage,emulation$`),
    );
  });
});
