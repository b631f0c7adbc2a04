import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import type { SpinError } from '../../src/core/errors.js';
import { DaemonClient } from '../../src/daemon/daemon-client.js';
import { startDaemon } from '../../src/daemon/daemon-runner.js';
import type { RunningDaemon } from '../../src/daemon/daemon-runner.js';
import { NatsBroker } from '../../src/daemon/nats-client.js';
import { cmd, tempHome } from '../support/broker-helpers.js';
import { startNatsServer } from '../support/nats-server.js';
import type { TestNatsServer } from '../support/nats-server.js';

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    return (error as SpinError).code;
  }
}

/**
 * The agent protocol through both transports of one coordinator (in this process): the daemon's
 * unix socket and NATS. Each case runs against both and must see the same broker rules.
 */
describe('the agent protocol, over the unix socket and over NATS alike', () => {
  let nats: TestNatsServer;
  let home: ReturnType<typeof tempHome>;
  let daemon: RunningDaemon;
  let api: DaemonClient;
  const brokers: Broker[] = [];

  beforeAll(async () => {
    nats = await startNatsServer();
    home = tempHome();
    daemon = await startDaemon({ home: home.dir, nats: { url: nats.url, fleet: 'conf' } });
    api = await DaemonClient.connect({ socketPath: daemon.paths.socket });
  });
  afterAll(async () => {
    try {
      await Promise.all(brokers.map((b) => b.close()));
      await api.close();
      await daemon.stop('test over');
      await nats.stop();
    } finally {
      home.remove();
    }
  });

  const transports: [string, (node: string) => Promise<Broker>][] = [
    ['unix socket', () => DaemonClient.connect({ socketPath: daemon.paths.socket })],
    [
      'NATS',
      (node) =>
        NatsBroker.connect(
          { url: nats.url, fleet: 'conf' },
          {
            node,
            outbox: join(home.dir, `outbox-${node}`),
            holders: join(home.dir, `agents-${node}`),
          },
        ),
    ],
  ];

  async function submit(resource: string, node: string, ids: string[]): Promise<string> {
    const packageId = await api.createPackage({ name: resource });
    await api.addCommands(
      packageId,
      ids.map((id) => cmd(resource, { id, node })),
    );
    await api.enqueue(packageId);
    return packageId;
  }

  describe.each(transports)('%s', (name, open) => {
    const resource = `r-${name.replace(/\W/g, '')}`;

    it('leases in order, renews, acks; refuses a stale attempt and another node', async () => {
      const nodea = await open('nodea');
      const nodeb = await open('nodeb');
      brokers.push(nodea, nodeb);
      const packageId = await submit(resource, 'nodea', ['one', 'two']);
      const a = await nodea.consumer({ node: 'nodea', resource, leaseMs: 5_000, holder: 'ha' });
      const b = await nodeb.consumer({ node: 'nodeb', resource, leaseMs: 5_000, holder: 'hb' });
      expect(await b.lease({ waitMs: 0 })).toBeUndefined();
      const first = (await a.lease({ waitMs: 1_000 }))!;
      expect([first.commandId, first.spec.node]).toEqual(['one', 'nodea']);
      expect(await a.renew(first)).toBeGreaterThan(Date.now());
      expect(await codeOf(b.renew(first))).toBe('wrong_node');
      expect(await codeOf(b.ack(first, { ok: true }))).toBe('wrong_node');
      expect(await codeOf(a.ack({ ...first, attemptId: 'bogus' }, { ok: true }))).toBe(
        'stale_attempt',
      );
      expect((await a.ack(first, { ok: true })).outcome.state).toBe('succeeded');
      expect(await codeOf(a.ack(first, { ok: true }))).toBe('stale_attempt');
      const second = (await a.lease({ waitMs: 1_000 }))!;
      expect(second.commandId).toBe('two');
      expect((await a.ack(second, { ok: false, retryable: false })).outcome.state).toBe('failed');
      const status = await api.status(packageId);
      expect(status.commands.map((c) => [c.id, c.state])).toEqual([
        ['one', 'succeeded'],
        ['two', 'failed'],
      ]);
    });
  });

  it('leaves no undelivered result behind on NATS', () => {
    for (const node of ['nodea', 'nodeb']) {
      const dir = join(home.dir, `outbox-${node}`);
      const owed = readdirSync(dir).filter((name) => statSync(join(dir, name)).size > 0);
      expect(owed).toEqual([]);
    }
  });
});
