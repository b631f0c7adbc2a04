import { copyFile, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Agent } from '../../src/agents/agent.js';
import { emulationAgent } from '../../src/agents/emulation/emulation-agent.js';
import type { SupervisionRecord } from '../../src/agents/emulation/supervision-record.js';
import type { SupervisionEvent } from '../../src/agents/emulation/vm-supervisor.js';
import { storageAgent } from '../../src/agents/storage/storage-agent.js';
import { alive } from '../support/process-alive.js';
import { makeTempHome, type TempHome } from '../support/temp-home.js';
import { tinyVm, type TinyVm } from '../support/tiny-vm.js';

let t: TempHome;
let tiny: TinyVm;
/** The VM ids a test started, stopped after it whatever happened. */
const started = new Set<number>();
let plain: Agent;

/** An emulation agent that supervises, with the events it reports and a way to wait for one. */
interface Supervised {
  agent: Agent;
  events: SupervisionEvent[];
  /** Resolves with the first event (already seen or to come) that `match` accepts; rejects after `ms`. */
  event(match: (e: SupervisionEvent) => boolean, ms?: number): Promise<SupervisionEvent>;
  end: () => Promise<void>;
}

const ends: (() => Promise<void>)[] = [];

function supervised(): Supervised {
  const events: SupervisionEvent[] = [];
  const waiters = new Set<() => void>();
  const agent = emulationAgent({
    supervise: {
      role: 'agent',
      onEvent: (event) => {
        events.push(event);
        for (const waiter of waiters) waiter();
      },
    },
  });
  const end = agent.serve!(t.ctx().roots);
  ends.push(end);
  return {
    agent,
    events,
    end,
    event: (match, ms = 60_000) =>
      new Promise((resolve, reject) => {
        const look = (): void => {
          const found = events.find(match);
          if (found === undefined) return;
          clearTimeout(timer);
          waiters.delete(look);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(look);
          reject(new Error(`no such event within ${String(ms)} ms: ${JSON.stringify(events)}`));
        }, ms);
        waiters.add(look);
        look();
      }),
  };
}

type GuestTest = 'panic' | 'poweroff' | 'heartbeat' | 'none';

function vmConfig(test: GuestTest): Record<string, unknown> {
  return {
    name: `tiny-${test}`,
    cpus: 1,
    memory: 128,
    images: [{ volume: 'test', path: 'disk.raw' }],
    kernel: 'boot/vmlinuz',
    initrd: 'boot/stubborn.cpio.gz',
    append: test === 'none' ? tiny.append : `${tiny.append} spin.test=${test}`,
  };
}

async function record(id: number): Promise<SupervisionRecord> {
  return JSON.parse(
    await readFile(join(t.home, 'vms', String(id), 'supervision.json'), 'utf8'),
  ) as SupervisionRecord;
}

async function startVm(
  agent: Agent,
  id: number,
  test: GuestTest,
  restart: Record<string, unknown>,
  health?: Record<string, unknown>,
): Promise<number> {
  started.add(id);
  await t.run(agent, 'write_config', { id, vm: vmConfig(test) });
  const start = await t.run(agent, 'start', {
    id,
    ready_when: tiny.marker,
    ready_timeout: '60s',
    restart,
    ...(health === undefined ? {} : { health }),
  });
  return Number(/pid (\d+)/.exec(start.output)?.[1]);
}

beforeAll(async () => {
  tiny = await tinyVm();
  t = await makeTempHome('spin-supervise-');
  const boot = join(t.home, 'images', 'boot');
  await mkdir(boot, { recursive: true });
  await copyFile(tiny.kernel, join(boot, 'vmlinuz'));
  await copyFile(tiny.stubborn, join(boot, 'stubborn.cpio.gz'));
  const storage = storageAgent();
  await t.run(storage, 'add_volume', { path: 'test' });
  await t.run(storage, 'create_image', { volume: 'test', image: 'disk.raw', image_size: 1 });
  plain = emulationAgent();
});

afterEach(async () => {
  for (const end of ends.splice(0)) await end();
  for (const id of started) await t.run(plain, 'stop', { id, timeout: 0 }).catch(() => undefined);
  started.clear();
});

afterAll(async () => {
  await t.cleanup();
});

describe('VM supervision (real qemu)', () => {
  it('restarts a qemu killed with SIGKILL within its delay, on the same disk, keeping the last boot', async () => {
    const s = supervised();
    const pid = await startVm(s.agent, 1, 'none', { delay: '200ms' });
    const disk = await stat(join(t.home, 'images', 'test', 'disk.raw'));
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    const exited = await s.event((e) => e.event === 'exited');
    expect(exited).toMatchObject({ vm: '1', cause: 'died', restarts: 0 });
    // Seen from the monitor's close, not by a poll: within a second of the kill.
    expect(exited.at - killedAt).toBeLessThan(1000);
    const restarting = await s.event((e) => e.event === 'restarting');
    expect(restarting.waitMs).toBeGreaterThanOrEqual(160);
    expect(restarting.waitMs).toBeLessThanOrEqual(200);
    const restarted = await s.event((e) => e.event === 'restarted');
    expect(restarted.restarts).toBe(1);
    expect(restarted.pid).not.toBe(pid);
    expect(alive(restarted.pid!)).toBe(true);
    // The same config and the same disk file: the new qemu opens the very image.
    const cmdline = await readFile(`/proc/${String(restarted.pid)}/cmdline`, 'utf8');
    expect(cmdline).toContain(join(t.home, 'images', 'test', 'disk.raw'));
    expect((await stat(join(t.home, 'images', 'test', 'disk.raw'))).ino).toBe(disk.ino);
    const after = await record(1);
    expect(after).toMatchObject({ state: 'running', restarts: 1, intent: 'run' });
    expect(after.lastExit?.cause).toBe('died');
    expect(after.qemu?.pid).toBe(restarted.pid);
    // The killed boot's console is kept beside the new one.
    expect(await readFile(join(t.home, 'vms', '1', 'console.log.1'), 'utf8')).toContain(
      tiny.marker,
    );
    // The start's observation sees the VM running again.
    expect((await s.agent.actions.get('start')!.observe!({ id: 1 }, t.ctx())).present).toBe(true);
  });

  it('restarts a panicking guest with a doubling delay, then gives up after its attempts', async () => {
    const s = supervised();
    await startVm(s.agent, 2, 'panic', { attempts: 2, interval: '10m', delay: '200ms' });
    const gaveUp = await s.event((e) => e.event === 'gave-up', 90_000);
    expect(gaveUp).toMatchObject({ vm: '2', cause: 'panic', restarts: 2 });
    const exits = s.events.filter((e) => e.event === 'exited');
    expect(exits.map((e) => e.cause)).toEqual(['panic', 'panic', 'panic']);
    const waits = s.events.filter((e) => e.event === 'restarting').map((e) => e.waitMs ?? 0);
    expect(waits).toHaveLength(2);
    expect(waits[0]).toBeGreaterThanOrEqual(160);
    expect(waits[0]).toBeLessThanOrEqual(200);
    expect(waits[1]).toBeGreaterThanOrEqual(320);
    expect(waits[1]).toBeLessThanOrEqual(400);
    const after = await record(2);
    expect(after).toMatchObject({ state: 'gave-up', restarts: 2 });
    expect(after.lastExit?.cause).toBe('panic');
    expect((await s.agent.actions.get('start')!.observe!({ id: 2 }, t.ctx())).present).toBe(false);
  });

  it('does not restart a guest that powered itself off under on-failure', async () => {
    const s = supervised();
    await startVm(s.agent, 3, 'poweroff', { delay: '200ms' });
    const exited = await s.event((e) => e.event === 'exited');
    expect(exited.cause).toBe('poweroff');
    const after = await record(3);
    expect(after.state).toBe('exited');
    expect(after.lastExit?.cause).toBe('poweroff');
    expect(s.events.map((e) => e.event)).toEqual(['exited']);
  });

  it('never restarts a VM that spin stops, and records it as stopped', async () => {
    const s = supervised();
    await startVm(s.agent, 4, 'none', { policy: 'always', delay: '0s' });
    const stop = await t.run(s.agent, 'stop', { id: 4, timeout: 0 });
    expect(stop.output).toMatch(/^vm 4 stopped by (QMP quit|SIGKILL)/);
    expect(await record(4)).toMatchObject({ intent: 'stop', state: 'stopped' });
    // A new start is supervised afresh, and its end by spin's stop is no exit either.
    await t.run(s.agent, 'start', { id: 4, restart: { policy: 'always', delay: '0s' } });
    await t.run(s.agent, 'stop', { id: 4, timeout: 0 });
    expect(s.events).toEqual([]);
  });

  it('records a VM started without a supervisor as unsupervised, and leaves its end alone', async () => {
    await startVm(plain, 5, 'none', {});
    expect(await record(5)).toMatchObject({ supervisor: null, state: 'running', intent: 'run' });
    // A VM that was never configured has nothing to stop, nor any record to mark.
    expect((await t.run(plain, 'stop', { id: 99 })).output).toBe('vm 99 already stopped');
  });

  it('ends and restarts a VM that fails its health check: its console stops beating', async () => {
    const s = supervised();
    const health = { console: 'heartbeat', interval: '1s', failures: 2 };
    const pid = await startVm(s.agent, 6, 'heartbeat', { delay: '200ms' }, health);
    const exited = await s.event((e) => e.event === 'exited');
    expect(exited.cause).toBe('unhealthy');
    expect(exited.detail).toBe('no console output matched /heartbeat/ in 2 checks in a row');
    expect(alive(pid)).toBe(false);
    const restarted = await s.event((e) => e.event === 'restarted');
    expect((await record(6)).health).toMatchObject({ console: 'heartbeat', failures: 2 });
    // Checked again after the restart: the new boot beats, then falls silent too.
    const again = await s.event((e) => e.event === 'exited' && e.restarts === 1);
    expect(again.cause).toBe('unhealthy');
    expect(alive(restarted.pid!)).toBe(false);
  });

  it('refuses a tcp health check on a port the VM does not forward, before anything starts', async () => {
    await t.run(plain, 'write_config', { id: 7, vm: vmConfig('none') });
    const refused = await t.run(plain, 'start', { id: 7, health: { tcp: 2222 } }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ code: 'invalid_input', details: { field: 'health.tcp' } });
    expect((await plain.actions.get('start')!.observe!({ id: 7 }, t.ctx())).present).toBe(false);
  });
});
