import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Gate } from '../support/fake-agent.js';
import {
  EventLog,
  inProcess,
  make,
  pkg,
  planLines,
  recorded,
  summaryOf,
  type InProcess,
} from '../support/in-process.js';

/**
 * plan and apply driven in process: fake agents behind the Agent contract on the embedded
 * broker of a temp SPIN_HOME. Held runs, failures and drift are set by the test; nothing waits
 * on time. The CLI's rendering of the same runs is test/reconcile/apply.test.ts.
 */
let h: InProcess;
beforeEach(async () => {
  h = await inProcess();
});
afterEach(async () => {
  await h.cleanup();
});

describe('plan', () => {
  it('says create, update, unchanged, drifted and prune, and changes nothing', async () => {
    h.alpha.fail('f', { retryable: false });
    const first = pkg('p', make('a'), make('b', { size: 1 }), make('c'), make('d'), make('f'));
    expect(await h.apply([first])).toEqual(summaryOf({ succeeded: 4, failed: 1 }));
    h.alpha.drift('c');
    const before = await readFile(h.statePath, 'utf8');

    const second = pkg('p', make('a'), make('b', { size: 2 }), make('c'), make('e'), make('f'));
    expect(planLines(await h.plan([second]))).toEqual([
      'p/a unchanged: up to date',
      'p/b update: changed: params.size',
      'p/c drifted: observed missing: name=c',
      'p/e create: new command',
      'p/f create: last run failed',
      'p/d prune: no longer in the file',
    ]);
    expect(await readFile(h.statePath, 'utf8')).toBe(before);
    expect(h.journal).toHaveLength(5); // the first apply's runs; planning ran nothing
  });

  it('of packages never applied, says create for every command', async () => {
    const plans = await h.plan([pkg('p', make('a'), make('b', { needs: ['a'] }))]);
    expect(planLines(plans)).toEqual(['p/a create: new command', 'p/b create: new command']);
  });
});

describe('apply', () => {
  it('runs every command once, and the second apply does nothing', async () => {
    const p = pkg('p', make('a'), make('b', { needs: ['a'], on: 'beta' }), make('c'));
    expect(await h.apply([p])).toEqual(summaryOf({ succeeded: 3 }));
    expect([...h.alpha.world, ...h.beta.world].sort()).toEqual(['a', 'b', 'c']);
    const state = await h.state();
    expect(state.serial).toBe(1);
    expect(recorded(state, 'p')).toEqual(['a succeeded', 'b succeeded', 'c succeeded']);

    const log = new EventLog();
    expect(await h.apply([p], { emit: log.listener })).toEqual(summaryOf({ unchanged: 3 }));
    expect(log.events.map((e) => e.type)).toEqual(['plan', 'done']); // no broker opened
    expect(h.journal).toHaveLength(3);
    expect((await h.state()).serial).toBe(1);
  });

  it('skips the dependents of a failure transitively while an independent branch goes on', async () => {
    h.alpha.fail('bad', { retryable: false, message: 'disk on fire' });
    h.beta.fail('flaky', { retryable: true });
    const p = pkg(
      'p',
      make('root'),
      make('bad', { needs: ['root'], retries: 2 }),
      make('child', { needs: ['bad'], on: 'beta' }),
      make('grandchild', { needs: ['child'] }),
      make('side', { needs: ['root'], on: 'beta' }),
      make('side2', { needs: ['side'] }),
      make('flaky', { on: 'beta' }),
    );
    expect(await h.apply([p])).toEqual(summaryOf({ succeeded: 3, failed: 2, skipped: 2 }));
    const state = await h.state();
    expect(recorded(state, 'p')).toEqual([
      'bad failed',
      'child skipped',
      'flaky failed',
      'grandchild skipped',
      'root succeeded',
      'side succeeded',
      'side2 succeeded',
    ]);
    const bad = state.packages['p']?.commands['bad'];
    expect(bad?.error).toEqual({ code: 'action_failed', message: 'disk on fire' });
    // Not retryable: one attempt although two retries were allowed.
    expect([h.alpha.calls('bad'), bad?.attempts]).toEqual([1, 1]);
    expect([h.beta.calls('child'), h.alpha.calls('grandchild')]).toEqual([0, 0]);
    expect(state.packages['p']?.commands['flaky']?.attempts).toBe(1);

    // Once healed, the next apply runs what failed or was skipped, and only that.
    h.alpha.heal('bad');
    h.beta.heal('flaky');
    expect(await h.apply([p])).toEqual(summaryOf({ succeeded: 4, unchanged: 3 }));
    expect(recorded(await h.state(), 'p').every((line) => line.endsWith(' succeeded'))).toBe(true);
    expect(['root', 'side2', 'bad'].map((n) => h.alpha.calls(n))).toEqual([1, 1, 2]);
  });

  it('runs a drifted command again, and only that one', async () => {
    const p = pkg('p', make('a'), make('b', { needs: ['a'] }));
    await h.apply([p]);
    h.alpha.drift('a');
    expect(await h.apply([p])).toEqual(summaryOf({ succeeded: 1, unchanged: 1 }));
    expect([h.alpha.calls('a'), h.alpha.calls('b')]).toEqual([2, 1]);
    expect(h.alpha.world.has('a')).toBe(true);
    expect(planLines(await h.plan([p]))).toEqual([
      'p/a unchanged: up to date',
      'p/b unchanged: up to date',
    ]);
  });

  it('resumes after a cancelled apply without running again what succeeded', async () => {
    const p = pkg(
      'p',
      make('a'),
      make('b', { needs: ['a'] }),
      make('c', { needs: ['b'] }),
      make('other', { on: 'beta' }),
    );
    const held = h.alpha.hold('b');
    const log = new EventLog();
    const stop = new AbortController();
    const applying = h.apply([p], { signal: stop.signal, emit: log.listener });
    await held.started;
    await log.command('p', 'other', 'succeeded');
    stop.abort('SIGINT');
    const first = await applying;
    expect(first).toEqual(summaryOf({ succeeded: 2, cancelled: 2, interrupted: true }));
    expect(log.events.some((e) => e.type === 'interrupted')).toBe(true);
    expect(recorded(await h.state(), 'p')).toEqual([
      'a succeeded',
      'b cancelled',
      'c cancelled',
      'other succeeded',
    ]);
    expect(h.alpha.world.has('b')).toBe(false);

    expect(await h.apply([p])).toEqual(summaryOf({ succeeded: 2, unchanged: 2 }));
    expect(['a', 'b', 'c'].map((n) => h.alpha.calls(n))).toEqual([1, 2, 1]);
    expect(h.beta.calls('other')).toBe(1);
    expect(recorded(await h.state(), 'p').every((line) => line.endsWith(' succeeded'))).toBe(true);
  });

  it('runs one command at a time per queue, while the queues run side by side', async () => {
    const names = ['a1', 'a2', 'a3', 'a4'];
    const gates = new Map<string, Gate>(names.map((n) => [n, h.alpha.hold(n)]));
    const beta = h.beta.hold('b1');
    const applying = h.apply([pkg('p', ...names.map((n) => make(n)), make('b1', { on: 'beta' }))]);
    await beta.started;
    for (let i = 0; i < names.length; i += 1) {
      // Whichever alpha command the broker leased next: it alone runs on its queue.
      const next = await Promise.race(
        [...gates].map(([name, gate]) => gate.started.then(() => name)),
      );
      expect(h.alpha.running).toBe(1);
      expect(h.alpha.order('make')).toHaveLength(i + 1);
      if (i === 0) expect(h.beta.running).toBe(1); // beta's queue runs beside alpha's
      if (i === 0) beta.release();
      gates.get(next)?.release();
      gates.delete(next);
    }
    expect(await applying).toEqual(summaryOf({ succeeded: 5 }));
    expect([h.alpha.peak, h.beta.peak]).toEqual([1, 1]);
  });
});
