import { describe, expect, it } from 'vitest';
import { PackageRunner, type PackageWork } from '../../src/watch/package-runner.js';

/** A promise with its resolve exposed. */
function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A runner whose work waits on a deferred per run, counting what runs at once. */
function harness(concurrency: number) {
  const started: { name: string; work: PackageWork; finish: () => void }[] = [];
  const waiters: (() => void)[] = [];
  let live = 0;
  let peak = 0;
  const runner = new PackageRunner({
    concurrency,
    run: async (name, work) => {
      live += 1;
      peak = Math.max(peak, live);
      const gate = deferred();
      started.push({ name, work, finish: gate.resolve });
      for (const wake of waiters.splice(0)) wake();
      await gate.promise;
      live -= 1;
    },
  });
  const startedCount = async (n: number): Promise<void> => {
    while (started.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  return { runner, started, startedCount, peak: () => peak, live: () => live };
}

describe('PackageRunner', () => {
  it('runs one package at a time, and requests while it runs make one more run', async () => {
    const h = harness(4);
    h.runner.request('a', { kind: 'apply', reason: 'initial' });
    await h.startedCount(1);
    for (let i = 0; i < 5; i++) h.runner.request('a', { kind: 'apply', reason: 'changed' });
    h.runner.request('a', { kind: 'apply', reason: 'resync' });
    expect(h.runner.stateOf('a')).toBe('dirty');
    h.started[0]?.finish();
    await h.startedCount(2);
    expect(h.started[1]?.work).toEqual({ kind: 'apply', reason: 'changed' });
    h.started[1]?.finish();
    await h.runner.idle();
    expect(h.started).toHaveLength(2);
    expect(h.peak()).toBe(1);
  });

  it('runs different packages side by side up to the limit', async () => {
    const h = harness(2);
    for (const name of ['a', 'b', 'c'])
      h.runner.request(name, { kind: 'apply', reason: 'initial' });
    await h.startedCount(2);
    expect(h.runner.stateOf('c')).toBe('queued');
    h.started[0]?.finish();
    await h.startedCount(3);
    expect(h.started.map((s) => s.name)).toEqual(['a', 'b', 'c']);
    for (const s of h.started) s.finish();
    await h.runner.idle();
    expect(h.peak()).toBe(2);
  });

  it('a removal waiting is not displaced by a resync, and the newest file request wins', async () => {
    const h = harness(1);
    h.runner.request('busy', { kind: 'apply', reason: 'initial' });
    await h.startedCount(1);
    h.runner.request('a', { kind: 'remove' });
    h.runner.request('a', { kind: 'apply', reason: 'resync' });
    h.runner.request('b', { kind: 'remove' });
    h.runner.request('b', { kind: 'apply', reason: 'changed' });
    h.started[0]?.finish();
    await h.startedCount(2);
    h.started[1]?.finish();
    await h.startedCount(3);
    h.started[2]?.finish();
    await h.runner.idle();
    expect(h.started.slice(1).map((s) => [s.name, s.work])).toEqual([
      ['a', { kind: 'remove' }],
      ['b', { kind: 'apply', reason: 'changed' }],
    ]);
  });

  it('stop starts nothing more and waits for what runs', async () => {
    const h = harness(1);
    h.runner.request('a', { kind: 'apply', reason: 'initial' });
    h.runner.request('b', { kind: 'apply', reason: 'initial' });
    await h.startedCount(1);
    let stopped = false;
    const stopping = h.runner.stop().then(() => (stopped = true));
    h.runner.request('c', { kind: 'apply', reason: 'changed' });
    await Promise.resolve();
    expect(stopped).toBe(false);
    h.started[0]?.finish();
    await stopping;
    expect(h.started.map((s) => s.name)).toEqual(['a']);
    expect(h.live()).toBe(0);
  });
});
