import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SpinError } from '../../src/core/errors.js';
import { brokerPaths } from '../../src/broker/broker-paths.js';
import type { BrokerEvent, Lease } from '../../src/broker/broker-types.js';
import { DaemonClient } from '../../src/daemon/daemon-client.js';
import { killHard, requireBuild, runDaemonProcess } from '../support/cli-process.js';
import { cmd, tempHome } from '../support/broker-helpers.js';
import { seededRandom } from '../support/seeded-random.js';

/**
 * kill -9 the daemon at random points of a 1,000-command run over 4 queues, restart it, finish.
 * Nothing may be lost, nothing recorded as succeeded twice, and each queue's successes come in
 * enqueue order. The points come from a seeded PRNG whose seed is printed: SPIN_TEST_SEED=<seed>
 * replays the same kill points.
 */
describe('daemon crash and restart', () => {
  const total = 1_000;
  const resources = ['q0', 'q1', 'q2', 'q3'];
  let home: ReturnType<typeof tempHome> | undefined;
  let daemon: ChildProcess | undefined;
  let client: DaemonClient | undefined;

  beforeAll(() => {
    requireBuild();
  });
  afterEach(async () => {
    try {
      await client?.close();
      if (daemon !== undefined) await killHard(daemon);
    } finally {
      home?.remove();
    }
  });

  it('loses nothing, succeeds nothing twice, and keeps per-queue order', async () => {
    const random = seededRandom('test/daemon/crash.test.ts');
    home = tempHome();
    const socketPath = brokerPaths(home.dir).socket;
    daemon = await runDaemonProcess(home.dir);
    client = await DaemonClient.connect({ socketPath });
    /** The client of the daemon now running: replaced at each restart. */
    const live = (): DaemonClient => client!;
    const pkg = await live().createPackage({ name: 'crash' });
    await live().addCommands(
      pkg,
      Array.from({ length: total }, (_, i) => cmd(resources[i % 4]!, { id: `n${String(i)}` })),
    );
    await live().enqueue(pkg);

    const killAt = Array.from({ length: 4 }, () => 50 + Math.floor(random.next() * 900)).sort(
      (a, b) => a - b,
    );
    const acked: Lease[] = [];
    let restarting: Promise<void> | undefined;
    let done = false;
    const kills: Promise<void>[] = [];

    /** Kills the daemon (once per kill point), restarts it, and reconnects the client. */
    const crash = (): Promise<void> =>
      (restarting ??= (async () => {
        await killHard(daemon!);
        await live().close();
        daemon = await runDaemonProcess(home!.dir);
        client = await DaemonClient.connect({ socketPath });
        restarting = undefined;
      })());

    const drive = async (resource: string): Promise<void> => {
      while (!done) {
        if (restarting) await restarting;
        try {
          const consumer = await live().consumer({ node: 'local', resource });
          let lease = await consumer.lease({ waitMs: 200 });
          while (lease) {
            const reply = await consumer.ack(lease, { ok: true }, { next: true });
            acked.push(lease);
            if (acked.length >= (killAt[0] ?? Infinity)) {
              killAt.shift();
              // Kill a random moment later, so the kill lands anywhere in the daemon's work.
              kills.push(
                new Promise<void>((resolve) => {
                  setTimeout(() => void crash().then(resolve), random.next() * 5);
                }),
              );
            }
            lease = reply.next;
          }
          await consumer.close();
          if ((await live().status(pkg)).state === 'succeeded') done = true;
        } catch (error) {
          if (!(error instanceof SpinError && error.code === 'unreachable')) throw error;
        }
      }
    };
    await Promise.all(resources.map(drive));
    // A kill scheduled at the very end may still be restarting the daemon.
    await Promise.all(kills);

    const status = await live().status(pkg);
    expect(status.commands.filter((c) => c.state !== 'succeeded')).toEqual([]);
    expect(status.commands).toHaveLength(total);
    expect(killAt).toEqual([]);

    const ids = acked.map((l) => l.commandId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const resource of resources) {
      const order = acked
        .filter((l) => l.spec.resource === resource)
        .map((l) => Number(l.commandId.slice(1)));
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }

    const audit = readFileSync(brokerPaths(home.dir).auditLog, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as BrokerEvent);
    const succeeded = new Map<string, number>();
    for (const e of audit) {
      if (e.type === 'command' && e.to === 'succeeded') {
        succeeded.set(e.commandId, (succeeded.get(e.commandId) ?? 0) + 1);
      }
    }
    expect([...succeeded.values()].filter((n) => n > 1)).toEqual([]);
  });
});
