import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest';
import type { SpinError } from '../../src/core/errors.js';
import type { Broker } from '../../src/broker/broker.js';
import { brokerPaths } from '../../src/broker/broker-paths.js';
import type { BrokerEvent } from '../../src/broker/broker-types.js';
import { openOwnedBroker } from '../../src/broker/embedded-broker.js';
import { openBroker } from '../../src/daemon/open-broker.js';
import { cmd, tempHome, testHome } from '../support/broker-helpers.js';

describe('embedded broker', () => {
  let home: ReturnType<typeof tempHome>;
  let broker: Broker;

  beforeEach(async () => {
    home = tempHome();
    broker = await openBroker({ home: home.dir, synchronous: 'normal', sweepIntervalMs: 0 });
  });
  afterEach(async () => {
    try {
      await broker.close();
    } finally {
      home.remove();
    }
  });

  it('is what openBroker gives when no daemon answers, and owns the home', async () => {
    expect(broker.kind).toBe('embedded');
    const error = await openOwnedBroker({ home: home.dir }).catch((e: unknown) => e as SpinError);
    expect(error).toMatchObject({ code: 'daemon_running', exitCode: 3 });
    expect((error as SpinError).message).toContain(`pid ${String(process.pid)}`);
  });

  it('serves a test consumer: a waiting lease wakes on enqueue; ack hands over the next', async () => {
    const consumer = await broker.consumer({ node: 'local', resource: 'storage', holder: 'test' });
    const waiting = consumer.lease({ waitMs: 10_000 });
    const pkg = await broker.createPackage({ name: 'demo' });
    await broker.addCommands(pkg, [cmd('storage', { id: 'a' }), cmd('storage', { id: 'b' })]);
    await broker.enqueue(pkg);
    const a = await waiting;
    expect(a?.commandId).toBe('a');
    const reply = await consumer.ack(a!, { ok: true, output: { made: 'a' } }, { next: true });
    expect(reply.outcome.state).toBe('succeeded');
    expect(reply.next?.commandId).toBe('b');
    expect(await consumer.renew(reply.next!)).toBeGreaterThan(Date.now());
    await consumer.ack(reply.next!, {
      ok: false,
      error: { code: 'invalid_input', message: 'bad image_size', details: { field: 'image_size' } },
      retryable: false,
    });
    const status = await broker.status(pkg);
    expect(status.state).toBe('failed');
    expect(status.failures).toEqual([
      {
        commandId: 'b',
        error: {
          code: 'invalid_input',
          message: 'bad image_size',
          details: { field: 'image_size' },
        },
      },
    ]);
    expect(await consumer.lease()).toBeUndefined();
  });

  it('wakes a waiting consumer when a need succeeds in another queue', async () => {
    const storage = await broker.consumer({ node: 'local', resource: 'storage' });
    const emulation = await broker.consumer({ node: 'local', resource: 'emulation' });
    const pkg = await broker.createPackage();
    await broker.addCommands(pkg, [
      cmd('storage', { id: 'image' }),
      cmd('emulation', { id: 'start', needs: ['image'] }),
    ]);
    await broker.enqueue(pkg);
    expect(await emulation.lease()).toBeUndefined();
    const waiting = emulation.lease({ waitMs: 10_000 });
    await storage.ack((await storage.lease())!, { ok: true });
    expect((await waiting)?.commandId).toBe('start');
  });

  it('gives a released lease back at once, and stops waiting on abort', async () => {
    const consumer = await broker.consumer({ node: 'local', resource: 'storage' });
    const pkg = await broker.createPackage();
    await broker.addCommands(pkg, [cmd('storage', { id: 'a' })]);
    await broker.enqueue(pkg);
    const first = (await consumer.lease())!;
    await consumer.release(first);
    const again = (await consumer.lease())!;
    expect([again.commandId, again.attempt]).toEqual(['a', 2]);
    const controller = new AbortController();
    const waiting = consumer.lease({ waitMs: 60_000, signal: controller.signal });
    controller.abort();
    expect(await waiting).toBeUndefined();
  });

  it('streams events to subscribers and appends every transition to the audit log', async () => {
    const events: BrokerEvent[] = [];
    const stop = await broker.subscribe((e) => events.push(e));
    const pkg = await broker.createPackage();
    await broker.addCommands(pkg, [cmd('storage', { id: 'a', params: { path: 'x' } })]);
    await broker.enqueue(pkg);
    await broker.cancel(pkg);
    stop();
    expect(events.map((e) => (e.type === 'refused' ? e.type : e.to))).toEqual([
      'staged',
      'staged',
      'ready',
      'enqueued',
      'cancelled',
      'cancelled',
    ]);
    await broker.close();
    const lines = readFileSync(brokerPaths(home.dir).auditLog, 'utf8').trim().split('\n');
    const audit = lines.map((l) => JSON.parse(l) as BrokerEvent);
    expect(audit).toEqual(events);
    expect(audit[1]).toMatchObject({ spec: { id: 'a', params: { path: 'x' } } });
  });
});

describe('the audit log', () => {
  it('rotates a full file, keeps the newest ones, and loses no line at the seams', async () => {
    const home = testHome();
    const auditLog = brokerPaths(home).auditLog;
    const events: BrokerEvent[] = [];
    // Each round writes well past 2 KiB, so the file rotates at least once a round.
    for (let round = 0; round < 6; round++) {
      const broker = await openOwnedBroker({
        home,
        synchronous: 'normal',
        sweepIntervalMs: 0,
        auditRotation: { maxBytes: 2048, keep: 3 },
      });
      onTestFinished(() => broker.close());
      const stop = await broker.subscribe((e) => events.push(e));
      const pkg = await broker.createPackage({ name: `round ${String(round)}` });
      await broker.addCommands(
        pkg,
        Array.from({ length: 10 }, (_, i) => cmd('storage', { id: `c${String(i)}` })),
      );
      await broker.enqueue(pkg);
      await broker.cancel(pkg);
      stop();
      await broker.close();
    }
    const files = [`${auditLog}.3`, `${auditLog}.2`, `${auditLog}.1`, auditLog];
    expect(existsSync(`${auditLog}.4`)).toBe(false);
    const kept = files.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as BrokerEvent),
    );
    // The files, oldest first, hold the newest events in order, without a gap at any seam.
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(events.length);
    expect(kept).toEqual(events.slice(events.length - kept.length));
  });
});
