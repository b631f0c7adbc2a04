import { existsSync } from 'node:fs';
import { brokerPaths } from '../broker/broker-paths.js';
import type { PackageSummary } from '../broker/queue-store.js';

/**
 * The daemon's recent packages when a daemon answers for `home`; undefined otherwise. The daemon
 * client (and the broker code beside it) is imported only when a socket is there to connect to.
 */
export async function liveBrokerView(home: string): Promise<PackageSummary[] | undefined> {
  if (!existsSync(brokerPaths(home).socket)) return undefined;
  try {
    const { connectDaemon } = await import('../daemon/open-broker.js');
    const client = await connectDaemon(home);
    try {
      return await client.listPackages(20);
    } finally {
      await client.close();
    }
  } catch {
    return undefined;
  }
}

/**
 * The commands of the daemon's unfinished packages that wait for their node, with the reason
 * the daemon gives (`waiting for node nodeb (offline since 12:03:10)`), by package id.
 */
export async function nodeWaits(
  home: string,
  packages: readonly PackageSummary[],
): Promise<Map<string, { id: string; reason: string }[]>> {
  const waits = new Map<string, { id: string; reason: string }[]>();
  const open = packages.filter((p) => p.unfinished > 0);
  if (open.length === 0) return waits;
  try {
    const { connectDaemon } = await import('../daemon/open-broker.js');
    const client = await connectDaemon(home);
    try {
      for (const pkg of open) {
        const status = await client.status(pkg.id);
        const waiting = status.commands.flatMap((c) =>
          c.state === 'ready' && c.reason?.startsWith('waiting for node') === true
            ? [{ id: c.id, reason: c.reason }]
            : [],
        );
        if (waiting.length > 0) waits.set(pkg.id, waiting);
      }
    } finally {
      await client.close();
    }
  } catch {
    // The daemon went away meanwhile: nothing more to say.
  }
  return waits;
}
