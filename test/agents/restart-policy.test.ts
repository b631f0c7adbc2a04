import { describe, expect, it } from 'vitest';
import {
  decideRestart,
  restartPolicyOf,
  restartsAfter,
} from '../../src/agents/emulation/restart-policy.js';
import { classifyExit } from '../../src/agents/emulation/vm-exit.js';
import { SpinError } from '../../src/core/errors.js';

const minute = 60_000;

describe('restart policy', () => {
  it("fills in Nomad's defaults for services", () => {
    expect(restartPolicyOf({ id: 1 })).toEqual({
      policy: 'on-failure',
      attempts: 2,
      intervalMs: 30 * minute,
      delayMs: 15_000,
      maxDelayMs: 5 * minute,
      mode: 'fail',
    });
  });

  it('refuses what the schema refuses, as a queue from another version may bring it', () => {
    for (const restart of [
      { policy: 'sometimes' },
      { attempts: -1 },
      { attempts: 1001 },
      { delay: 'soon' },
      { mode: 'retry' },
      [],
    ]) {
      expect(() => restartPolicyOf({ restart })).toThrow(SpinError);
    }
  });

  it('doubles the delay per restart in the window, up to max_delay, less at most a fifth of jitter', () => {
    const policy = restartPolicyOf({
      restart: { attempts: 10, delay: '1s', max_delay: '5s', interval: '1h' },
    });
    const now = 10 * minute;
    const waits = [0, 1, 2, 3, 4].map((n) => {
      const window = Array.from({ length: n }, (_, i) => now - 1000 * (n - i));
      return decideRestart(policy, window, now, 0);
    });
    expect(waits).toEqual(
      [1000, 2000, 4000, 5000, 5000].map((waitMs) => ({ kind: 'restart', waitMs })),
    );
    expect(decideRestart(policy, [], now, 0.999)).toEqual({ kind: 'restart', waitMs: 800 });
    // Restarts older than the interval no longer count: the delay is back to its first value.
    expect(decideRestart(policy, [now - 2 * 60 * minute], now, 0)).toEqual({
      kind: 'restart',
      waitMs: 1000,
    });
  });

  it('gives up (mode fail) or waits out the interval (mode delay) once the attempts are used up', () => {
    const now = 100 * minute;
    const window = [now - 20 * minute, now - 10 * minute];
    const fail = restartPolicyOf({ restart: { attempts: 2, interval: '30m' } });
    expect(decideRestart(fail, window, now, 0)).toEqual({ kind: 'give-up' });
    const delay = restartPolicyOf({ restart: { attempts: 2, interval: '30m', mode: 'delay' } });
    expect(decideRestart(delay, window, now, 0)).toEqual({
      kind: 'wait-interval',
      waitMs: 10 * minute,
    });
    // An interval of 0 sets no limit.
    const unlimited = restartPolicyOf({ restart: { attempts: 0, interval: 0, delay: '1s' } });
    expect(decideRestart(unlimited, window, now, 0)).toEqual({ kind: 'restart', waitMs: 1000 });
  });

  it('restarts after failures only under on-failure; after anything under always; never under no', () => {
    const of = (policy: string) => restartPolicyOf({ restart: { policy } });
    expect(restartsAfter(of('on-failure'), 'poweroff')).toBe(false);
    expect(restartsAfter(of('on-failure'), 'panic')).toBe(true);
    expect(restartsAfter(of('always'), 'poweroff')).toBe(true);
    expect(restartsAfter(of('no'), 'died')).toBe(false);
  });
});

describe('exit classification from QMP events', () => {
  const shutdown = (guest: boolean, reason: string) => ({
    event: 'SHUTDOWN',
    data: { guest, reason },
  });

  it('tells a poweroff from a panic, a host stop and a death with no shutdown', () => {
    expect(classifyExit([shutdown(true, 'guest-shutdown')]).cause).toBe('poweroff');
    expect(
      classifyExit([{ event: 'GUEST_PANICKED', data: {} }, shutdown(true, 'guest-panic')]).cause,
    ).toBe('panic');
    expect(classifyExit([shutdown(false, 'host-signal')])).toEqual({
      cause: 'host-stop',
      detail: 'host-signal',
    });
    expect(classifyExit([shutdown(false, 'host-qmp-quit')]).cause).toBe('host-stop');
    expect(classifyExit([])).toEqual({ cause: 'died' });
  });
});
