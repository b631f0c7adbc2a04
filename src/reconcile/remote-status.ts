import type { NatsOptions } from '../daemon/nats-connection.js';
import type { stateStatus } from './status.js';

/** `spin status --nats`: the coordinator's state, as `stateStatus` reads it there. */
export async function remoteStatus(
  nats: NatsOptions,
  options: { name?: string },
): ReturnType<typeof stateStatus> {
  const { NatsBroker } = await import('../daemon/nats-client.js');
  const client = await NatsBroker.connect(nats);
  try {
    return await client.call('runs.status', options);
  } finally {
    await client.close();
  }
}
