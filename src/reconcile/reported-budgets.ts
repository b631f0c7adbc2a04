import { existsSync } from 'node:fs';
import { brokerPaths } from '../broker/broker-paths.js';
import { SpinError } from '../core/errors.js';
import type { ReportedBudget, ReportedBudgets } from '../core/vm-budget.js';
import { budgetOfRecord, type NodeRecord, type NodeRegistry } from '../daemon/node-registry.js';

/** What the coordinator in this process knows of its nodes: its registry, from their heartbeats. */
export function registryBudgets(registry: NodeRegistry): ReportedBudgets {
  return (nodes) => Promise.resolve(new Map(nodes.map((node) => [node, registry.budget(node)])));
}

/**
 * What the coordinator of `home` knows of its nodes, asked of its daemon over the socket at each
 * lookup (its registry lives in its memory: `nodes.json` is written only when a node comes or
 * goes, so its figures are those of that moment). Without a daemon there is no coordinator to
 * ask, and no node but this one has known room.
 */
export function daemonBudgets(home: string): ReportedBudgets {
  return async (nodes) => {
    const known = await askDaemon(home);
    return new Map(
      nodes.map((node): [string, ReportedBudget] => [
        node,
        known === undefined
          ? { state: 'unknown', why: 'no-coordinator' }
          : budgetOfRecord(known.get(node)),
      ]),
    );
  };
}

async function askDaemon(home: string): Promise<Map<string, NodeRecord> | undefined> {
  const socket = brokerPaths(home).socket;
  if (!existsSync(socket)) return undefined;
  const { DaemonClient } = await import('../daemon/daemon-client.js');
  let client;
  try {
    client = await DaemonClient.connect({ socketPath: socket });
  } catch (error) {
    // A socket nobody answers on is left over from a daemon that died.
    if (error instanceof SpinError && error.code === 'unreachable') return undefined;
    throw error;
  }
  try {
    return new Map((await client.nodes()).map((record) => [record.name, record]));
  } finally {
    await client.close();
  }
}
