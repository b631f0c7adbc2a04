import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/broker/group-commit.js';
import type { CommitTarget } from '../../src/broker/group-commit.js';

/** A target that records what each transaction held; `fail` makes the next commit throw. */
function recorder(): CommitTarget & { commits: string[][]; open: string[]; fail: boolean } {
  const target = {
    commits: [] as string[][],
    open: [] as string[],
    fail: false,
    begin() {
      target.open = [];
      return true;
    },
    commit() {
      if (target.fail) throw new Error('disk full');
      target.commits.push(target.open);
      return { wrote: target.open.length > 0, durable: () => undefined };
    },
  };
  return target;
}

describe('group commit', () => {
  it('runs operations queued in one turn as one transaction; a failing one fails alone', async () => {
    const target = recorder();
    const commits = new GroupCommit(target);
    const results = await Promise.allSettled([
      commits.run(() => target.open.push('a')),
      commits.run(() => {
        throw new Error('bad op');
      }),
      commits.run(() => target.open.push('c')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(target.commits).toEqual([['a', 'c']]);
    await commits.run(() => target.open.push('d'));
    expect(target.commits).toEqual([['a', 'c'], ['d']]);
    expect(commits.stats).toEqual({ commits: 2, operations: 4 });
  });

  it('rejects the whole transaction when the commit itself fails', async () => {
    const target = recorder();
    target.fail = true;
    const commits = new GroupCommit(target);
    const results = await Promise.allSettled([commits.run(() => 1), commits.run(() => 2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    commits.close();
    await expect(commits.run(() => 3)).rejects.toThrow('closed');
  });

  it('keeps the transaction open while a flush runs, and commits what ran meanwhile after', async () => {
    const target = recorder();
    const flushes: ((error?: Error) => void)[] = [];
    const commits = new GroupCommit(target, (done) => flushes.push(done));
    const settled: string[] = [];
    const track = (name: string, p: Promise<unknown>): Promise<void> =>
      p.then(
        () => void settled.push(name),
        () => void settled.push(`${name} failed`),
      );
    const a = track(
      'a',
      commits.run(() => target.open.push('a')),
    );
    commits.flush();
    expect(target.commits).toEqual([['a']]);
    // While a's flush runs, b and c run in a new transaction that waits; a lease-like early
    // operation resolves as soon as it ran.
    const b = track(
      'b',
      commits.run(() => target.open.push('b')),
    );
    commits.flush();
    const early = track(
      'early',
      commits.run(
        () => target.open.push('early'),
        () => true,
      ),
    );
    commits.flush();
    const c = track(
      'c',
      commits.run(() => target.open.push('c')),
    );
    commits.flush();
    await early;
    expect(settled).toEqual(['early']);
    expect(target.commits).toEqual([['a']]);
    expect(flushes).toHaveLength(1);
    flushes[0]?.();
    await a;
    expect(target.commits).toEqual([['a'], ['b', 'early', 'c']]);
    expect(settled).toEqual(['early', 'a']);
    flushes[1]?.(new Error('disk gone'));
    await Promise.all([b, c]);
    expect(settled).toEqual(['early', 'a', 'b failed', 'c failed']);
  });

  it('waits without blocking while another connection holds the write lock', async () => {
    const target = recorder();
    let busy = 3;
    const begin = target.begin.bind(target);
    target.begin = () => (busy-- > 0 ? false : begin());
    const commits = new GroupCommit(target);
    let other = 0;
    const timer = setInterval(() => other++, 0);
    try {
      await Promise.all([commits.run(() => target.open.push('a')), commits.run(() => 2)]);
    } finally {
      clearInterval(timer);
    }
    expect(target.commits).toEqual([['a']]);
    expect(busy).toBe(-1);
    // The event loop went on meanwhile.
    expect(other).toBeGreaterThan(0);
  });

  it('flushes nothing for a transaction that wrote nothing', async () => {
    const target = recorder();
    let flushes = 0;
    const commits = new GroupCommit(target, (done) => {
      flushes++;
      done();
    });
    await commits.run(() => 'found no work');
    expect(flushes).toBe(0);
    await commits.run(() => target.open.push('a'));
    expect(flushes).toBe(1);
  });
});
