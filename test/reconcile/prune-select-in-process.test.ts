import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SpinError } from '../../src/core/errors.js';
import {
  inProcess,
  make,
  pkg,
  planned,
  recorded,
  summaryOf,
  type InProcess,
} from '../support/in-process.js';

/**
 * prune, destroy and `--target`/`--exclude` driven in process, with fake agents on the embedded
 * broker of a temp SPIN_HOME (see apply-in-process.test.ts).
 */
let h: InProcess;
beforeEach(async () => {
  h = await inProcess();
});
afterEach(async () => {
  await h.cleanup();
});

/** vol ← img ← vm across both queues, and an unrelated keep: the undo order crosses queues. */
const chain = (name = 'p'): ReturnType<typeof pkg> =>
  pkg(
    name,
    make('vol', { size: 8, name: `${name}-vol` }),
    make('img', { needs: ['vol'], on: 'beta', name: `${name}-img` }),
    make('vm', { needs: ['img'], name: `${name}-vm` }),
    make('keep', { name: `${name}-keep` }),
  );

const unmade = (h: InProcess): string[] =>
  h.journal.filter((r) => r.action === 'unmake').map((r) => r.name);

describe('prune', () => {
  it('undoes commands that left the file, in reverse dependency order, only when asked', async () => {
    await h.apply([chain()]);
    const trimmed = pkg('p', make('keep', { name: 'p-keep' }));
    expect(planned(await h.plan([trimmed]), 'p', 'prune')).toEqual(['vol', 'img', 'vm']);

    expect(await h.apply([trimmed])).toEqual(summaryOf({ unchanged: 1 }));
    expect(unmade(h)).toEqual([]);
    expect(recorded(await h.state(), 'p')).toHaveLength(4);

    expect(await h.apply([trimmed], { prune: true })).toEqual(
      summaryOf({ unchanged: 1, pruned: 3 }),
    );
    expect(unmade(h)).toEqual(['p-vm', 'p-img', 'p-vol']);
    // The inverse gets the params its action maps them to: the name, not the size.
    expect(h.journal.find((r) => r.name === 'p-vol' && r.action === 'unmake')?.params).toEqual({
      name: 'p-vol',
    });
    expect(recorded(await h.state(), 'p')).toEqual(['keep succeeded']);
    expect([...h.alpha.world, ...h.beta.world]).toEqual(['p-keep']);
    expect(await h.apply([trimmed], { prune: true })).toEqual(summaryOf({ unchanged: 1 }));
  });
});

describe('destroy', () => {
  it('undoes a package in reverse dependency order and leaves the others', async () => {
    await h.apply([chain('p'), chain('q')]);
    expect(await h.destroy(['p'])).toEqual(summaryOf({ pruned: 4 }));
    expect(unmade(h).filter((n) => n !== 'p-keep')).toEqual(['p-vm', 'p-img', 'p-vol']);
    const state = await h.state();
    expect(Object.keys(state.packages)).toEqual(['q']);
    expect([...h.alpha.world, ...h.beta.world].sort()).toEqual([
      'q-img',
      'q-keep',
      'q-vm',
      'q-vol',
    ]);
  });

  it('refuses a package that is not in the state, and runs nothing', async () => {
    await h.apply([chain('p')]);
    const refused = await h.destroy(['p', 'nope']).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpinError);
    expect((refused as SpinError).code).toBe('not_found');
    expect(unmade(h)).toEqual([]);
    expect(Object.keys((await h.state()).packages)).toEqual(['p']);
  });
});

describe('selection', () => {
  // p: a ← b ← c, and d; q: c, which shares its id with p/c.
  const p = pkg(
    'p',
    make('a'),
    make('b', { needs: ['a'] }),
    make('c', { needs: ['b'] }),
    make('d'),
  );
  const q = pkg('q', make('c', { name: 'q-c', on: 'beta' }));
  const made = (h: InProcess): string[] =>
    h.journal.filter((r) => r.action === 'make').map((r) => r.name);

  it('a target brings along what it needs, transitively, in every package with that id', async () => {
    expect(await h.apply([p, q], { targets: ['c'] })).toEqual(summaryOf({ succeeded: 4 }));
    expect(made(h).sort()).toEqual(['a', 'b', 'c', 'q-c']);
  });

  it('package/id targets one package; what was not selected still waits to be created', async () => {
    expect(await h.apply([p, q], { targets: ['p/c'] })).toEqual(summaryOf({ succeeded: 3 }));
    expect(made(h).sort()).toEqual(['a', 'b', 'c']);
    const plans = await h.plan([p, q]);
    expect([planned(plans, 'p', 'create'), planned(plans, 'q', 'create')]).toEqual([['d'], ['c']]);
  });

  it('a target whose needs are up to date runs only itself', async () => {
    await h.apply([p], { targets: ['b'] });
    expect(await h.apply([p], { targets: ['c'] })).toEqual(
      summaryOf({ succeeded: 1, unchanged: 2 }),
    );
    expect([h.alpha.calls('a'), h.alpha.calls('b'), h.alpha.calls('c')]).toEqual([1, 1, 1]);
  });

  it('an exclude leaves out the command and what needs it, transitively', async () => {
    expect(await h.apply([p, q], { excludes: ['b'] })).toEqual(summaryOf({ succeeded: 3 }));
    expect(made(h).sort()).toEqual(['a', 'd', 'q-c']);
  });

  it('an exclude wins over a target', async () => {
    expect(await h.apply([p, q], { targets: ['p/c', 'd'], excludes: ['p/b'] })).toEqual(
      summaryOf({ succeeded: 2 }),
    );
    expect(made(h).sort()).toEqual(['a', 'd']);
  });

  it('a name that matches no command is an error, and nothing runs', async () => {
    const refused = await h
      .apply([p, q], { targets: ['c'], excludes: ['q/b', 'nope'] })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(SpinError);
    expect((refused as SpinError).code).toBe('invalid_input');
    expect((refused as SpinError).message).toBe("no command matches 'q/b', 'nope'");
    expect(h.journal).toEqual([]);
  });
});
