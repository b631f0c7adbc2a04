import { spawnSync } from 'node:child_process';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { SqliteQueueStore } from '../../src/broker/sqlite-queue-store.js';
import type { PackageMeta } from '../../src/reconcile/run-packages.js';
import {
  EventLog,
  inProcess,
  make,
  pkg,
  recorded,
  summaryOf,
  type InProcess,
} from '../support/in-process.js';

/**
 * What a killed `spin apply` leaves in the broker and the state: its package `p` owned by a
 * process that is gone, `a` succeeded (its effect on the machine done, its result not yet in the
 * state), `b` running. The next apply is driven in process with the fake agents.
 */
let h: InProcess;
beforeEach(async () => {
  h = await inProcess();
});
afterEach(async () => {
  await h.cleanup();
});

async function leaveDeadApply(): Promise<void> {
  const gone = Number(
    spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout,
  );
  const store = new SqliteQueueStore({
    path: join(h.home, 'broker.db'),
    owner: { pid: gone, host: hostname(), startTime: 1, command: 'spin apply' },
  });
  try {
    const meta: PackageMeta = {
      statePath: h.statePath,
      submitter: { pid: gone, host: hostname(), startTime: 1 },
      phase: 'apply',
      file: 'p.spin.yaml',
      fileNeeds: { a: [], b: ['a'] },
    };
    const id = await store.createPackage({ name: 'p', owned: true, meta: { ...meta } });
    await store.addCommands(id, [make('a'), make('b', { needs: ['a'] })]);
    await store.enqueue(id);
    const q = { node: 'local', resource: 'alpha' };
    const a = await store.lease(q);
    await store.ack(a!, { ok: true, output: { text: 'alpha make a done' } });
    expect((await store.lease(q))?.commandId).toBe('b');
  } finally {
    await store.close();
  }
  h.alpha.world.add('a'); // what `a` did to the machine before the apply died
}

it('records what a dead apply finished, cancels the rest, and runs only what is left', async () => {
  await leaveDeadApply();
  const log = new EventLog();
  const summary = await h.apply([pkg('p', make('a'), make('b', { needs: ['a'] }))], {
    emit: log.listener,
  });
  const recovered = log.events.find((e) => e.type === 'recovered');
  expect(recovered).toMatchObject({
    type: 'recovered',
    // a's success, and b as cancelled while it ran: what it made, if anything, is spin's.
    recorded: 2,
    cancelled: [{ name: 'p', notStarted: 0, interrupted: ['b'] }],
  });
  expect(summary).toEqual(summaryOf({ succeeded: 1, unchanged: 1 }));
  expect(h.alpha.calls('a', 'make')).toBe(0);
  expect(h.alpha.calls('b', 'make')).toBe(1);
  expect(recorded(await h.state(), 'p')).toEqual(['a succeeded', 'b succeeded']);
});

it('says nothing of recovery when no spin died', async () => {
  const log = new EventLog();
  await h.apply([pkg('p', make('a'))], { emit: log.listener });
  expect(log.events.some((e) => e.type === 'recovered')).toBe(false);
});
