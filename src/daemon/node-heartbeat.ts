import { statfsSync } from 'node:fs';
import { hostname, loadavg } from 'node:os';
import type { AdmissionReport, NodeCapacity } from '../core/vm-budget.js';
import type { Heartbeat } from './node-registry.js';

const mib = 1024 * 1024;

/**
 * A heartbeat of this node: the free disk of its `$SPIN_HOME`, the load, how many commands it
 * runs (`running`), and what its VM admission counts (`admission`: measured by the caller as a
 * start is checked; absent when its VMs cannot be counted). Its CPUs, memory and running VMs
 * come from that same measurement (`capacity`), so `spin nodes` and a plan agree with the agent.
 */
export function measureHeartbeat(options: {
  home: string;
  resources: string[];
  intervalMs: number;
  running: number;
  capacity: NodeCapacity;
  admission: AdmissionReport | undefined;
}): Heartbeat {
  const { capacity, admission } = options;
  const disk = statfsSync(options.home);
  return {
    resources: options.resources,
    capacity: {
      cpus: Math.ceil(capacity.cpus),
      memoryBytes: capacity.memoryMib * mib,
      diskFreeBytes: disk.bavail * disk.bsize,
      diskTotalBytes: disk.blocks * disk.bsize,
    },
    use: {
      load1: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      memoryUsedBytes: Math.max(0, capacity.memoryMib - capacity.availableMib) * mib,
      running: options.running,
      vms: admission?.vms.length ?? 0,
    },
    ...(admission === undefined ? {} : { admission }),
    intervalMs: options.intervalMs,
    host: hostname(),
    pid: process.pid,
  };
}

/**
 * Sends a heartbeat now and every `intervalMs` until the returned function is called; a
 * heartbeat that cannot be sent (NATS or the coordinator away) is simply missed.
 */
export function sendHeartbeats(intervalMs: number, send: () => Promise<void>): () => void {
  const beat = (): void => {
    Promise.resolve()
      .then(send)
      .catch(() => undefined);
  };
  beat();
  const timer = setInterval(beat, intervalMs);
  return () => {
    clearInterval(timer);
  };
}
