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
