import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SpinError } from '../../src/core/errors.js';
import type { BrokerEvent, Lease } from '../../src/broker/broker-types.js';
import type { BrokerTimings } from '../../src/broker/broker-semantics.js';
import type { QueueStore } from '../../src/broker/queue-store.js';
import { ManualClock, cmd } from '../support/broker-helpers.js';

/**
 * How the suite gets a store: `open` may be called again after `close` and must then see the
 * same data (a restart). Each call of `makeHarness` gives a fresh, empty store.
 */
export interface StoreHarness {
  open(): QueueStore;
  dispose(): void;
}

/** Builds a harness for one test; the suite passes its clock and shrunken timings. */
export type HarnessFactory = (options: {
  clock: ManualClock;
  timings: BrokerTimings;
}) => StoreHarness;

const timings: BrokerTimings = {
  leaseMs: 1_000,
  packageTtlMs: 10_000,
  retainFinishedMs: 60_000,
  timeoutGraceMs: 500,
  backoff: { baseMs: 100, factor: 2, maxMs: 1_000 },
};
const q = { node: 'local', resource: 'storage' };

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    return (error as SpinError).code;
  }
  return 'resolved';
}

/**
 * The conformance suite of the queue-store contract (queue-store.ts). Every store runs it: the
 * SQLite store now, a NATS JetStream store later.
 */
export function queueStoreConformance(name: string, factory: HarnessFactory): void {
  describe(`queue store conformance: ${name}`, () => {
    let clock: ManualClock;
    let harness: StoreHarness;
    let store: QueueStore;

    beforeEach(() => {
      clock = new ManualClock();
      harness = factory({ clock, timings });
      store = harness.open();
    });
    afterEach(async () => {
      try {
        await store.close();
      } finally {
        harness.dispose();
      }
    });

    async function submit(commands: ReturnType<typeof cmd>[]): Promise<string> {
      const pkg = await store.createPackage({ name: 'test' });
      await store.addCommands(pkg, commands);
      await store.enqueue(pkg);
      return pkg;
    }

    it('delivers 10,000 commands of a queue in enqueue order, one ack and lease per round', async () => {
      const first = await submit(Array.from({ length: 5_000 }, () => cmd('storage')));
      const second = await submit(Array.from({ length: 5_000 }, () => cmd('storage')));
      const seen: string[] = [];
      let lease = await store.lease(q);
      while (lease) {
        seen.push(`${lease.packageId}/${lease.commandId}`);
        lease = (await store.ack(lease, { ok: true }, q)).next;
      }
      const expected = [first, second].flatMap((p) =>
        Array.from({ length: 5_000 }, (_, i) => `${p}/c${String(i + 1)}`),
      );
      expect(seen).toEqual(expected);
      expect((await store.status(second)).state).toBe('succeeded');
    });

    it('passes over a command whose needs have not succeeded, which keeps its place', async () => {
      const pkg = await submit([
        cmd('emulation', { id: 'a' }),
        cmd('storage', { id: 'b', needs: ['a'] }),
        cmd('storage', { id: 'c' }),
        cmd('storage', { id: 'd' }),
      ]);
      const c = await store.lease(q);
      expect(c?.commandId).toBe('c');
      const a = await store.lease({ node: 'local', resource: 'emulation' });
      expect(a?.commandId).toBe('a');
      await store.ack(a!, { ok: true });
      const reply = await store.ack(c!, { ok: true }, q);
      expect(reply.next?.commandId).toBe('b');
      await store.ack(reply.next!, { ok: true });
      const d = await store.lease(q);
      expect(d?.commandId).toBe('d');
      await store.ack(d!, { ok: true });
      const status = await store.status(pkg);
      expect(status.state).toBe('succeeded');
      expect(status.commands.map((x) => x.state)).toEqual(Array(4).fill('succeeded'));
    });

    it('keeps exactly one command in flight per queue under many concurrent consumers', async () => {
      const resources = ['r0', 'r1', 'r2', 'r3'];
      const perQueue = 60;
      await submit(resources.flatMap((r) => Array.from({ length: perQueue }, () => cmd(r))));
      const inFlight = new Map(resources.map((r) => [r, 0]));
      let maxInFlight = 0;
      let done = 0;
      const order = new Map<string, number[]>(resources.map((r) => [r, []]));
      const consumer = async (seed: number): Promise<void> => {
        let turn = seed;
        while (done < resources.length * perQueue) {
          const resource = resources[turn++ % resources.length]!;
          const lease = await store.lease({ node: 'local', resource });
          if (!lease) {
            await new Promise((resolve) => setImmediate(resolve));
            continue;
          }
          const now = inFlight.get(resource)! + 1;
          inFlight.set(resource, now);
          maxInFlight = Math.max(maxInFlight, now);
          order.get(resource)!.push(Number(lease.commandId.slice(1)));
          for (let i = 0; i < turn % 3; i++) await new Promise((r) => setImmediate(r));
          inFlight.set(resource, inFlight.get(resource)! - 1);
          await store.ack(lease, { ok: true });
          done++;
        }
      };
      await Promise.all(Array.from({ length: 32 }, (_, i) => consumer(i)));
      expect(maxInFlight).toBe(1);
      for (const seqs of order.values()) {
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(seqs).toHaveLength(perQueue);
      }
    });

    it('delivers again after a lease runs out, and refuses the old attempt', async () => {
      await submit([cmd('storage', { id: 'a' }), cmd('storage', { id: 'b' })]);
      const first = (await store.lease(q))!;
      expect(await store.lease(q)).toBeUndefined();
      clock.advance(999);
      expect(await store.lease(q)).toBeUndefined();
      clock.advance(1);
      const second = (await store.lease(q))!;
      expect(second.commandId).toBe('a');
      expect(second.attempt).toBe(2);
      expect(second.attemptId).not.toBe(first.attemptId);
      expect(await codeOf(store.ack(first, { ok: true }))).toBe('stale_attempt');
      expect((await store.ack(second, { ok: true })).outcome.state).toBe('succeeded');
    });

    it('hands a lease back to its own holder asking again (reclaim), to no one else', async () => {
      await submit([cmd('storage', { id: 'a' })]);
      const first = (await store.lease({ ...q, holder: 'h1', reclaim: true }))!;
      expect(await store.lease({ ...q, holder: 'h2', reclaim: true })).toBeUndefined();
      expect(await store.lease({ ...q, holder: 'h1' })).toBeUndefined();
      clock.advance(500);
      const again = (await store.lease({ ...q, holder: 'h1', reclaim: true }))!;
      expect([again.attemptId, again.attempt]).toEqual([first.attemptId, 1]);
      expect(again.leaseExpiresAt).toBe(clock.now() + timings.leaseMs);
      expect((await store.ack(first, { ok: true })).outcome.state).toBe('succeeded');
    });

    it('gives the lease of the holder a restarted consumer succeeds back at once, and fences off its ack', async () => {
      await submit([cmd('storage', { id: 'a' }), cmd('storage', { id: 'b' })]);
      const old = (await store.lease({ ...q, holder: 'h1', leaseMs: 3_600_000 }))!;
      // Another holder's name changes nothing: the lease is not its to end.
      expect(await store.lease({ ...q, holder: 'h3', succeeds: 'h2' })).toBeUndefined();
      const again = (await store.lease({ ...q, holder: 'h2', succeeds: 'h1' }))!;
      expect([again.commandId, again.attempt]).toEqual(['a', 2]);
      expect(again.attemptId).not.toBe(old.attemptId);
      expect(await codeOf(store.ack(old, { ok: true }))).toBe('stale_attempt');
      expect((await store.ack(again, { ok: true })).outcome.state).toBe('succeeded');
      // Once its command settled, naming the old holder again takes only the next command.
      expect((await store.lease({ ...q, holder: 'h2', succeeds: 'h1' }))?.commandId).toBe('b');
    });

    it('refuses a renew, ack or release naming another node than the command’s (wrong_node)', async () => {
      await submit([cmd('storage', { id: 'a' })]);
      const lease = (await store.lease(q))!;
      const elsewhere = { ...lease, node: 'nodeb' };
      expect(await codeOf(store.renew(elsewhere))).toBe('wrong_node');
      expect(await codeOf(store.ack(elsewhere, { ok: true }))).toBe('wrong_node');
      expect(await codeOf(store.release(elsewhere))).toBe('wrong_node');
      expect((await store.ack({ ...lease, node: q.node }, { ok: true })).outcome.state).toBe(
        'succeeded',
      );
    });

    it('renews a lease, and a sweep redelivers one that ran out', async () => {
      await submit([cmd('storage', { id: 'a' })]);
      const lease = (await store.lease({ ...q, leaseMs: 1_000 }))!;
      clock.advance(800);
      expect(await store.renew(lease, 1_000)).toBe(clock.now() + 1_000);
      clock.advance(800);
      expect(await store.sweep()).toEqual({ redelivered: 0, timedOut: 0, expired: 0, removed: 0 });
      clock.advance(200);
      expect(await store.sweep()).toEqual({ redelivered: 1, timedOut: 0, expired: 0, removed: 0 });
      expect(await codeOf(store.renew(lease))).toBe('stale_attempt');
      expect((await store.lease(q))?.attempt).toBe(2);
    });

    it('refuses stale acks: a wrong attempt id, a second ack, an ack after expiry', async () => {
      await submit([cmd('storage', { id: 'a' }), cmd('storage', { id: 'b' })]);
      const lease = (await store.lease(q))!;
      expect(await codeOf(store.ack({ ...lease, attemptId: 'bogus' }, { ok: true }))).toBe(
        'stale_attempt',
      );
      await store.ack(lease, { ok: true });
      expect(await codeOf(store.ack(lease, { ok: false }))).toBe('stale_attempt');
      const b = (await store.lease(q))!;
      clock.advance(timings.leaseMs);
      expect(await codeOf(store.ack(b, { ok: true }))).toBe('stale_attempt');
      expect(await codeOf(store.ack({ ...b, commandId: 'zz' }, { ok: true }))).toBe('not_found');
    });

    it('retries with exponential backoff, holding the head of its queue meanwhile', async () => {
      const pkg = await submit([cmd('storage', { id: 'a', retries: 2 }), cmd('storage')]);
      const error = { code: 'action_failed' as const, message: 'disk busy' };
      let lease = (await store.lease(q))!;
      const r1 = await store.ack(lease, { ok: false, error });
      expect(r1.outcome).toEqual({ state: 'ready', availableAt: clock.now() + 100 });
      clock.advance(99);
      expect(await store.lease(q)).toBeUndefined();
      clock.advance(1);
      lease = (await store.lease(q))!;
      expect([lease.commandId, lease.attempt]).toEqual(['a', 2]);
      const r2 = await store.ack(lease, { ok: false, error, retryable: true });
      expect(r2.outcome).toEqual({ state: 'ready', availableAt: clock.now() + 200 });
      clock.advance(200);
      lease = (await store.lease(q))!;
      expect((await store.ack(lease, { ok: false, error })).outcome.state).toBe('failed');
      const status = await store.status(pkg);
      expect(status.commands[0]).toMatchObject({ state: 'failed', attempt: 3, error });
      expect(status.failures).toEqual([{ commandId: 'a', error }]);
    });

    it('fails at once on a non-retryable error, whatever retries are left', async () => {
      await submit([cmd('storage', { id: 'a', retries: 5 })]);
      const lease = (await store.lease(q))!;
      const error = { code: 'invalid_input' as const, message: 'bad image_size' };
      const reply = await store.ack(lease, { ok: false, error, retryable: false });
      expect(reply.outcome.state).toBe('failed');
    });

    it('times out an attempt past its deadline even when it keeps renewing', async () => {
      await submit([cmd('storage', { id: 'a', timeoutMs: 1_500, retries: 0 })]);
      const lease = (await store.lease(q))!;
      for (let i = 0; i < 3; i++) {
        clock.advance(900);
        await store.renew(lease).catch(() => undefined);
      }
      clock.advance(1_000);
      expect(await store.sweep()).toMatchObject({ timedOut: 1 });
      expect((await store.status(lease.packageId)).commands[0]).toMatchObject({
        state: 'failed',
        error: { code: 'timeout' },
      });
    });

    it('skips every command needing a failed one, transitively, naming it; others go on', async () => {
      const pkg = await submit([
        cmd('storage', { id: 'a' }),
        cmd('storage', { id: 'b', needs: ['a'] }),
        cmd('emulation', { id: 'c', needs: ['b'] }),
        cmd('emulation', { id: 'd' }),
        cmd('emulation', { id: 'e', needs: ['d'] }),
      ]);
      const a = (await store.lease(q))!;
      await store.ack(a, { ok: false, error: { code: 'no_space', message: 'disk full' } });
      const emu = { node: 'local', resource: 'emulation' };
      const d = (await store.lease(emu))!;
      expect(d.commandId).toBe('d');
      const e = (await store.ack(d, { ok: true }, emu)).next!;
      expect(e.commandId).toBe('e');
      await store.ack(e, { ok: true });
      expect(await store.lease(q)).toBeUndefined();
      const status = await store.status(pkg);
      expect(status.state).toBe('failed');
      const byId = Object.fromEntries(status.commands.map((c) => [c.id, c]));
      for (const id of ['b', 'c']) {
        expect(byId[id]?.state).toBe('skipped');
        expect(byId[id]?.reason).toContain("needs 'a', which failed");
      }
      expect([byId['d']?.state, byId['e']?.state]).toEqual(['succeeded', 'succeeded']);
      expect(status.failures.map((f) => f.commandId)).toEqual(['a']);
    });

    it('expires and removes a package never enqueued within its TTL', async () => {
      const stale = await store.createPackage({ ttlMs: 5_000 });
      await store.addCommands(stale, [cmd('storage')]);
      const kept = await submit([cmd('storage')]);
      const events: BrokerEvent[] = [];
      store.subscribe((e) => events.push(e));
      clock.advance(4_999);
      expect((await store.sweep()).expired).toBe(0);
      clock.advance(1);
      expect((await store.sweep()).expired).toBe(1);
      expect(await codeOf(store.status(stale))).toBe('not_found');
      expect((await store.status(kept)).state).toBe('enqueued');
      expect(events).toContainEqual(expect.objectContaining({ packageId: stale, to: 'expired' }));
      clock.advance(timings.packageTtlMs);
      expect((await store.sweep()).expired).toBe(0);
    });

    it('keeps a finished package for its retention, then removes it; unfinished ones stay', async () => {
      const done = await submit([cmd('storage', { id: 'x' })]);
      const open = await submit([cmd('emulation', { id: 'y' })]);
      const lease = await store.lease(q);
      expect(lease?.commandId).toBe('x');
      if (lease === undefined) return;
      await store.ack(lease, { ok: true });
      expect((await store.status(done)).state).toBe('succeeded');
      clock.advance(timings.retainFinishedMs - 1);
      expect((await store.sweep()).removed).toBe(0);
      expect((await store.status(done)).state).toBe('succeeded');
      clock.advance(1);
      expect((await store.sweep()).removed).toBe(1);
      expect(await codeOf(store.status(done))).toBe('not_found');
      expect((await store.status(open)).state).toBe('enqueued');
    });

    it('enqueues atomically: an invalid package moves nothing; enqueue twice changes nothing', async () => {
      const bad = await store.createPackage();
      await store.addCommands(bad, [
        ...Array.from({ length: 100 }, () => cmd('storage')),
        cmd('storage', { id: 'late', needs: ['missing'] }),
      ]);
      expect(await codeOf(store.enqueue(bad))).toBe('invalid_input');
      const status = await store.status(bad);
      expect(status.state).toBe('staged');
      expect(new Set(status.commands.map((c) => c.state))).toEqual(new Set(['staged']));
      expect(await store.lease(q)).toBeUndefined();

      const cyclic = await store.createPackage();
      await store.addCommands(cyclic, [
        cmd('storage', { id: 'x', needs: ['y'] }),
        cmd('storage', { id: 'y', needs: ['x'] }),
      ]);
      await expect(store.enqueue(cyclic)).rejects.toThrow('x → y → x');

      const good = await submit([cmd('storage', { id: 'one' })]);
      expect(await store.enqueue(good)).toBe('enqueued');
      const lease = (await store.lease(q))!;
      expect(await store.enqueue(good)).toBe('running');
      await store.ack(lease, { ok: true });
      expect(await store.lease(q)).toBeUndefined();
      expect(await codeOf(store.addCommands(good, [cmd('storage')]))).toBe('state_conflict');
    });

    it('rejects duplicate and malformed command ids without adding any of the batch', async () => {
      const pkg = await store.createPackage();
      await store.addCommands(pkg, [cmd('storage', { id: 'a' })]);
      expect(
        await codeOf(store.addCommands(pkg, [cmd('storage'), cmd('storage', { id: 'a' })])),
      ).toBe('invalid_input');
      expect(await codeOf(store.addCommands(pkg, [cmd('storage', { id: 'no spaces' })]))).toBe(
        'invalid_input',
      );
      expect((await store.status(pkg)).commands.map((c) => c.id)).toEqual(['a']);
    });

    it('cancels a package: unfinished commands cancelled, the running attempt fenced off', async () => {
      const pkg = await submit([cmd('storage', { id: 'a' }), cmd('storage', { id: 'b' })]);
      const lease = (await store.lease(q))!;
      expect(await store.cancel(pkg)).toBe('cancelled');
      expect(await codeOf(store.ack(lease, { ok: true }))).toBe('cancelled');
      expect(await codeOf(store.renew(lease))).toBe('cancelled');
      expect(await store.lease(q)).toBeUndefined();
      const status = await store.status(pkg);
      expect(status.commands.map((c) => c.state)).toEqual(['cancelled', 'cancelled']);
      expect(await store.cancel(pkg)).toBe('cancelled');
    });

    it('resumes after a restart: leased commands ready again, in enqueue order', async () => {
      const pkg = await submit(Array.from({ length: 20 }, () => cmd('storage')));
      const other = await submit([cmd('emulation', { id: 'solo' })]);
      let lease = (await store.lease(q))!;
      lease = (await store.ack(lease, { ok: true }, q)).next!;
      expect(lease.commandId).toBe('c2');
      await store.lease({ node: 'local', resource: 'emulation' });
      await store.close();
      store = harness.open();
      expect((await store.recover()).redelivered).toBe(2);
      expect(await codeOf(store.ack(lease, { ok: true }))).toBe('stale_attempt');
      const seen: string[] = [];
      let next: Lease | undefined = await store.lease(q);
      while (next) {
        seen.push(next.commandId);
        next = (await store.ack(next, { ok: true }, q)).next;
      }
      expect(seen).toEqual(Array.from({ length: 19 }, (_, i) => `c${String(i + 2)}`));
      expect((await store.status(pkg)).state).toBe('succeeded');
      expect((await store.lease({ node: 'local', resource: 'emulation' }))?.commandId).toBe('solo');
      expect((await store.status(other)).state).toBe('running');
    });

    it('knows the lineage of each state file it serves, and names a different one', async () => {
      expect(await store.claimState('/home/a/state.json', 'l1', true)).toBeUndefined();
      expect(await store.claimState('/home/a/state.json', 'l1', false)).toBeUndefined();
      expect(await store.claimState('/home/a/state.json', 'l2', false)).toBe('l1');
      expect(await store.claimState('/home/b/state.json', 'l2', false)).toBeUndefined();
      expect(await store.claimState('/home/a/state.json', 'l3', true)).toBeUndefined();
      await store.close();
      store = harness.open();
      expect(await store.claimState('/home/a/state.json', 'l1', false)).toBe('l3');
    });

    it('reports every transition to subscribers, in order, once durable', async () => {
      const events: BrokerEvent[] = [];
      store.subscribe((e) => events.push(e));
      const pkg = await submit([
        cmd('storage', { id: 'a' }),
        cmd('storage', { id: 'b', needs: ['a'] }),
      ]);
      const a = (await store.lease(q))!;
      const b = (await store.ack(a, { ok: true, output: { size: 1 } }, q)).next!;
      await store.ack(b, { ok: true });
      // A late ack of a finished attempt changes nothing, and is reported as refused.
      expect(await codeOf(store.ack(a, { ok: true }))).toBe('stale_attempt');
      const trail = events.map((e) =>
        e.type === 'package'
          ? `pkg:${e.from ?? '-'}>${e.to}`
          : e.type === 'refused'
            ? `${e.commandId}:refused ${e.code} ${e.attemptId === a.attemptId ? 'a1' : '?'}`
            : `${e.commandId}:${e.from ?? '-'}>${e.to}`,
      );
      expect(trail).toEqual([
        'pkg:->staged',
        'a:->staged',
        'b:->staged',
        'a:staged>ready',
        'b:staged>waiting',
        'pkg:staged>enqueued',
        'a:ready>running',
        'pkg:enqueued>running',
        'a:running>succeeded',
        'b:waiting>ready',
        'b:ready>running',
        'b:running>succeeded',
        'pkg:running>succeeded',
        'a:refused stale_attempt a1',
      ]);
      expect(events.find((e) => e.type === 'command' && e.to === 'staged')).toMatchObject({
        spec: { id: 'a', resource: 'storage', action: 'noop' },
      });
      expect(events).toContainEqual(
        expect.objectContaining({ commandId: 'a', output: { size: 1 } }),
      );
      expect(pkg).toMatch(/^p-/);
    });
  });
}
