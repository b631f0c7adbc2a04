import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  checkPackageGraph,
  decideAfterFailure,
  packageStateOf,
} from '../../src/broker/broker-semantics.js';

describe('broker semantics', () => {
  it('backs off exponentially up to the cap', () => {
    const policy = { baseMs: 1_000, factor: 2, maxMs: 10_000 };
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, policy))).toEqual([
      1_000, 2_000, 4_000, 8_000, 10_000,
    ]);
  });

  it('retries while retries are left and the error is retryable', () => {
    const base = {
      retries: 2,
      error: { code: 'timeout' as const, message: 'slow' },
      now: 0,
      backoff: { baseMs: 10, factor: 2, maxMs: 100 },
    };
    expect(decideAfterFailure({ ...base, failures: 2, retryable: true })).toMatchObject({
      state: 'ready',
      availableAt: 20,
    });
    expect(decideAfterFailure({ ...base, failures: 3, retryable: true }).state).toBe('failed');
    expect(decideAfterFailure({ ...base, failures: 1, retryable: false }).state).toBe('failed');
  });

  it('derives the package state from its counts', () => {
    const counts = { started: true, unfinished: 0, failedOrSkipped: 0, cancelled: false };
    expect(packageStateOf(counts)).toBe('succeeded');
    expect(packageStateOf({ ...counts, failedOrSkipped: 1 })).toBe('failed');
    expect(packageStateOf({ ...counts, unfinished: 2 })).toBe('running');
    expect(packageStateOf({ ...counts, unfinished: 2, started: false })).toBe('enqueued');
    expect(packageStateOf({ ...counts, cancelled: true })).toBe('cancelled');
  });

  it('checks a 10,000-long chain of needs without overflowing, and names a cycle', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) => ({
      id: `c${String(i)}`,
      needs: i === 0 ? [] : [`c${String(i - 1)}`],
    }));
    expect(() => {
      checkPackageGraph(chain);
    }).not.toThrow();
    const cyclic = [
      { id: 'a', needs: ['c'] },
      { id: 'b', needs: ['a'] },
      { id: 'c', needs: ['b'] },
    ];
    expect(() => {
      checkPackageGraph(cyclic);
    }).toThrow('a → c → b → a');
    expect(() => {
      checkPackageGraph([{ id: 'a', needs: ['zz'] }]);
    }).toThrow("needs 'zz', which is not in the package");
  });
});
