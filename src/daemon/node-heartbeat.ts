import { readFileSync, readdirSync, statfsSync } from 'node:fs';
import { availableParallelism, freemem, hostname, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { isRunning } from '../core/process-identity.js';
import type { Heartbeat } from './node-registry.js';

/**
 * Measures this node for a heartbeat: CPUs, memory, the free disk of its `$SPIN_HOME`, the load,
 * how many commands it runs (`running`) and how many qemu VMs of its home are alive.
 */
export function measureNode(options: {
  home: string;
  resources: string[];
  intervalMs: number;
  running: number;
}): Heartbeat {
  const disk = statfsSync(options.home);
  return {
    resources: options.resources,
    capacity: {
      cpus: availableParallelism(),
      memoryBytes: totalmem(),
      diskFreeBytes: disk.bavail * disk.bsize,
      diskTotalBytes: disk.blocks * disk.bsize,
    },
    use: {
      load1: Math.round((loadavg()[0] ?? 0) * 100) / 100,
      memoryUsedBytes: totalmem() - freemem(),
      running: options.running,
      vms: runningVms(options.home),
    },
    intervalMs: options.intervalMs,
    host: hostname(),
    pid: process.pid,
  };
}

/** qemu processes alive per the pid files under `$SPIN_HOME/vms/<id>/qemu.pid`. */
function runningVms(home: string): number {
  const root = join(home, 'vms');
  let count = 0;
  let ids: string[];
  try {
    ids = readdirSync(root);
  } catch {
    return 0;
  }
  for (const id of ids) {
    try {
      if (isRunning(Number(readFileSync(join(root, id, 'qemu.pid'), 'utf8').trim()))) count++;
    } catch {
      // No pid file: not started.
    }
  }
  return count;
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
