import type { PackageSpec } from '../core/package.js';
import type { Broker } from './broker.js';
import type { PackageState } from './broker-types.js';

/** Commands per `addCommands` call: under the daemon API's 10,000-command, 4 MiB request limit. */
const chunkSize = 2_000;

/**
 * Submits a loaded package to a broker: creates it, adds its commands in file order (in chunks
 * the daemon accepts) and enqueues them all in one transaction. Returns the broker's package id
 * and the state after enqueue. A failure before enqueue leaves a staged package that expires by
 * its TTL; nothing of it ever runs.
 */
export async function submitPackage(
  broker: Broker,
  spec: PackageSpec,
  options: { ttlMs?: number } = {},
): Promise<{ packageId: string; state: PackageState }> {
  const packageId = await broker.createPackage({ name: spec.name, ...options });
  for (let i = 0; i < spec.commands.length; i += chunkSize) {
    await broker.addCommands(packageId, spec.commands.slice(i, i + chunkSize));
  }
  return { packageId, state: await broker.enqueue(packageId) };
}
