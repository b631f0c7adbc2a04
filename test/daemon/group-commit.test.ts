import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/daemon/group-commit.js';

describe('group commit', () => {
  it('runs operations queued in one turn as one batch; a failing one fails alone', async () => {
    const batches: number[] = [];
    const commits = new GroupCommit((ops) => {
      batches.push(ops.length);
      for (const op of ops) op();
      return undefined;
    });
    const results = await Promise.allSettled([
      commits.run(() => 1),
      commits.run(() => {
        throw new Error('bad op');
      }),
      commits.run(() => 3),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(batches).toEqual([3]);
    await commits.run(() => 4);
    expect(batches).toEqual([3, 1]);
  });

  it('rejects the whole batch when the commit itself fails', async () => {
    const commits = new GroupCommit(() => {
      throw new Error('disk full');
    });
    const results = await Promise.allSettled([commits.run(() => 1), commits.run(() => 2)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    commits.close();
    await expect(commits.run(() => 3)).rejects.toThrow('closed');
  });
});
