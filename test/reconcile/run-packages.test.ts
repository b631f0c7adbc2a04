import { describe, expect, it, onTestFinished } from 'vitest';
import type { Broker } from '../../src/broker/broker.js';
import type { BrokerEvent, BrokerListener } from '../../src/broker/broker-types.js';
import { openBroker } from '../../src/daemon/open-broker.js';
import { runPackages, type CommandOutcome } from '../../src/reconcile/run-packages.js';
import { cmd, testHome } from '../support/broker-helpers.js';

/**
 * A broker whose events lag its answers, as a daemon's do: it sends events once its store has
 * synced them, and answers a status read at the commit. Here every command is run to its end by
 * the time `enqueue` answers, and events are held: those of package `one` never come (they would
 * come after the run stopped listening); those of `two` and `three` come during the third status
 * read, after `two`'s status was read and before `three`'s is answered.
 */
function laggingBroker(real: Broker): Broker {
  const held: BrokerEvent[] = [];
  const names = new Map<string, string>();
  let listener: BrokerListener = () => undefined;
  let reads = 0;
  return {
    kind: real.kind,
    async createPackage(options) {
      const id = await real.createPackage(options);
      names.set(id, options?.name ?? '');
      return id;
    },
    addCommands: (id, commands) => real.addCommands(id, commands),
    async enqueue(id) {
      const state = await real.enqueue(id);
      const consumer = await real.consumer({ node: 'local', resource: 'storage', holder: 'test' });
      for (let lease = await consumer.lease(); lease; lease = await consumer.lease()) {
        await consumer.ack(lease, { ok: true, output: { text: `ran ${lease.commandId}` } });
      }
      await consumer.close();
      return state;
    },
    cancel: (id) => real.cancel(id),
    async status(id) {
      const status = await real.status(id);
      if (++reads === 3) {
        for (const event of held) if (names.get(event.packageId) !== 'one') listener(event);
      }
      return status;
    },
    claimState: (path, lineage, adopt) => real.claimState(path, lineage, adopt),
    listPackages: (limit) => real.listPackages(limit),
    async subscribe(own) {
      listener = own;
      return real.subscribe((event) => held.push(event));
    },
    consumer: (options) => real.consumer(options),
    close: () => real.close(),
  };
}

describe('following packages to their end', () => {
  it("tells each command's end once, whether its events come before or after the package's status says it ended", async () => {
    const home = testHome();
    const broker = await openBroker({ home, synchronous: 'normal', sweepIntervalMs: 0 });
    onTestFinished(() => broker.close());
    const outcomes: CommandOutcome[] = [];
    await runPackages({
      broker: laggingBroker(broker),
      statePath: `${home}/state.json`,
      requests: ['one', 'two', 'three'].map((name) => ({
        name,
        file: `${name}.spin.yaml`,
        phase: 'apply',
        commands: [cmd('storage', { id: 'a' }), cmd('storage', { id: 'b', needs: ['a'] })],
      })),
      emit: () => undefined,
      onOutcome: (outcome) => outcomes.push(outcome),
      signal: new AbortController().signal,
    });
    expect(outcomes.map((o) => [o.package, o.id, o.state, o.output])).toEqual([
      ['one', 'a', 'succeeded', 'ran a'],
      ['one', 'b', 'succeeded', 'ran b'],
      ['two', 'a', 'succeeded', 'ran a'],
      ['two', 'b', 'succeeded', 'ran b'],
      ['three', 'a', 'succeeded', 'ran a'],
      ['three', 'b', 'succeeded', 'ran b'],
    ]);
  });
});
