import { join } from 'node:path';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteQueueStore } from '../../src/broker/sqlite-queue-store.js';
import type { Lease } from '../../src/broker/broker-types.js';
import { cmd, tempHome, testHome } from '../support/broker-helpers.js';
import { queueStoreConformance } from './queue-store-conformance.js';

/** Opens a store closed when the test ends (before its home goes), whatever happened. */
function openStore(options: ConstructorParameters<typeof SqliteQueueStore>[0]): SqliteQueueStore {
  const store = new SqliteQueueStore(options);
  onTestFinished(() => store.close());
  return store;
}

/** Opens a raw connection to a store's file, closed when the test ends. */
function openDatabase(path: string, options?: Database.Options): Database.Database {
  const db = new Database(path, options);
  onTestFinished(() => {
    if (db.open) db.close();
  });
  return db;
}

queueStoreConformance('SQLite', ({ clock, timings }) => {
  const home = tempHome();
  return {
    // The suite checks semantics, not fsync; the crash test runs the store with synchronous=FULL.
    open: () =>
      new SqliteQueueStore({
        path: join(home.dir, 'broker.db'),
        clock,
        timings,
        synchronous: 'normal',
      }),
    dispose: home.remove,
  };
});

describe('SQLite store shared by two processes', () => {
  it('keeps one command in flight per queue across two connections to one file, each flushing', async () => {
    const path = join(testHome(), 'broker.db');
    const stores = [0, 1].map(() => openStore({ path }));
    const [a, b] = stores as [SqliteQueueStore, SqliteQueueStore];
    const pkg = await a.createPackage();
    await a.addCommands(
      pkg,
      Array.from({ length: 100 }, (_, i) => cmd(`r${String(i % 2)}`)),
    );
    await b.enqueue(pkg);
    const inFlight = new Map([
      ['r0', 0],
      ['r1', 0],
    ]);
    let max = 0;
    const order = new Map<string, number[]>([
      ['r0', []],
      ['r1', []],
    ]);
    const consume = async (store: SqliteQueueStore, resource: string): Promise<void> => {
      while (order.get(resource)!.length < 50) {
        const lease = await store.lease({ node: 'local', resource });
        if (!lease) {
          await new Promise((resolve) => setImmediate(resolve));
          continue;
        }
        const now = inFlight.get(resource)! + 1;
        inFlight.set(resource, now);
        max = Math.max(max, now);
        order.get(resource)!.push(Number(lease.commandId.slice(1)));
        await new Promise((resolve) => setImmediate(resolve));
        inFlight.set(resource, inFlight.get(resource)! - 1);
        await store.ack(lease, { ok: true });
      }
    };
    // Each queue has a consumer on each connection, competing.
    await Promise.all([consume(a, 'r0'), consume(b, 'r0'), consume(a, 'r1'), consume(b, 'r1')]);
    expect(max).toBe(1);
    for (const seqs of order.values()) expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect((await b.status(pkg)).state).toBe('succeeded');
  });
});

describe('SQLite store with durable commits', () => {
  const q = { node: 'local', resource: 'r' };

  /** Settles `ack` and `lease` in one batch; returns the order in which they resolved. */
  async function ackThenLease(store: SqliteQueueStore, ref: Lease): Promise<string[]> {
    const order: string[] = [];
    const ack = store.ack(ref, { ok: true }).then(() => order.push('ack'));
    const lease = store.lease(q).then((l) => order.push(`lease ${l?.commandId ?? 'none'}`));
    await Promise.all([ack, lease]);
    return order;
  }

  it('hands out a lease as soon as it is written, before the ack beside it is flushed', async () => {
    const store = openStore({ path: join(testHome(), 'broker.db') });
    const pkg = await store.createPackage();
    await store.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b' })]);
    await store.enqueue(pkg);
    const a = await store.lease(q);
    expect(await ackThenLease(store, a!)).toEqual(['lease b', 'ack']);
  });

  it('holds back a lease of a command whose need succeeded in a commit not yet flushed', async () => {
    const store = openStore({ path: join(testHome(), 'broker.db') });
    const pkg = await store.createPackage();
    await store.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b', needs: ['a'] })]);
    await store.enqueue(pkg);
    const a = await store.lease(q);
    expect(await ackThenLease(store, a!)).toEqual(['ack', 'lease b']);
  });

  it('reopens with every durable change after a close, from snapshot and journal alike', async () => {
    const path = join(testHome(), 'broker.db');
    const first = openStore({ path });
    const pkg = await first.createPackage({ name: 'kept' });
    await first.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b', needs: ['a'] })]);
    await first.enqueue(pkg);
    const a = await first.lease(q);
    await first.ack(a!, { ok: true, output: { n: 1 } });
    // A second connection sees the change through the journal, before any snapshot.
    const second = openStore({ path });
    expect((await second.status(pkg)).commands.map((c) => c.state)).toEqual(['succeeded', 'ready']);
    await first.close();
    await second.close();
    const reopened = openStore({ path });
    const status = await reopened.status(pkg);
    expect(status.name).toBe('kept');
    expect(status.commands[0]).toMatchObject({ id: 'a', state: 'succeeded', output: { n: 1 } });
    expect((await reopened.lease(q))?.commandId).toBe('b');
  });
});

describe('SQLite store snapshot', () => {
  it('folds the journal into its tables once idle, rows equal to what status reports', async () => {
    // The idle timer runs on the real clock: fake it (and only it; commits run on setImmediate),
    // so the test moves time on itself instead of waiting for the snapshot.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    onTestFinished(() => {
      vi.useRealTimers();
    });
    const path = join(testHome(), 'broker.db');
    const store = openStore({ path, synchronous: 'normal' });
    const pkg = await store.createPackage({ name: 'folded' });
    await store.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b', needs: ['a'] })]);
    await store.enqueue(pkg);
    const a = await store.lease({ node: 'local', resource: 'r' });
    await store.ack(a!, { ok: true, output: 'done' });
    const reader = openDatabase(path, { readonly: true });
    const journalRows = reader.prepare('SELECT count(*) FROM journal').pluck();
    expect(journalRows.get()).toBeGreaterThan(0);
    // Nothing else runs now: the store is idle. Let its idle time pass.
    vi.runAllTimers();
    expect(journalRows.get()).toBe(0);
    const rows = reader
      .prepare('SELECT id, state, output FROM commands WHERE package_id = ? ORDER BY position')
      .all(pkg);
    expect(rows).toEqual([
      { id: 'a', state: 'succeeded', output: '"done"' },
      { id: 'b', state: 'ready', output: null },
    ]);
    expect(reader.prepare('SELECT state FROM packages WHERE id = ?').pluck().get(pkg)).toBe(
      'running',
    );
    expect((await store.status(pkg)).commands.map((c) => `${c.id} ${c.state}`)).toEqual([
      'a succeeded',
      'b ready',
    ]);
  });
});

describe('SQLite store written by the previous spin', () => {
  it('opens a schema-1 store (tables, no journal) with its packages and queues intact', async () => {
    const path = join(testHome(), 'broker.db');
    const first = openStore({ path });
    const pkg = await first.createPackage({ name: 'old' });
    await first.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b' })]);
    await first.enqueue(pkg);
    await first.close();
    // What schema 1 left: the same tables, no journal table, schema 1 in meta.
    const db = openDatabase(path);
    db.exec(`DROP TABLE journal; DELETE FROM meta WHERE key <> 'schema'`);
    db.prepare(`UPDATE meta SET value = '1' WHERE key = 'schema'`).run();
    db.close();
    const reopened = openStore({ path });
    expect((await reopened.status(pkg)).commands.map((c) => `${c.id} ${c.state}`)).toEqual([
      'a ready',
      'b ready',
    ]);
    const a = await reopened.lease({ node: 'local', resource: 'r' });
    expect(a?.commandId).toBe('a');
    await reopened.ack(a!, { ok: true });
    await reopened.close();
    const check = openDatabase(path, { readonly: true });
    expect(check.prepare(`SELECT value FROM meta WHERE key = 'schema'`).pluck().get()).toBe('2');
  });
});

describe('SQLite store whose commit fails', () => {
  it.each(['full', 'normal'] as const)(
    'rejects the operations, keeps nothing of them, and goes on once the file takes writes (%s)',
    async (synchronous) => {
      const path = join(testHome(), 'broker.db');
      const store = openStore({ path, synchronous });
      const pkg = await store.createPackage();
      await store.addCommands(pkg, [cmd('r', { id: 'a' })]);
      await store.enqueue(pkg);
      // Another connection makes every journal write fail, as a full disk would.
      const other = openDatabase(path);
      other.exec(
        `CREATE TRIGGER refuse BEFORE INSERT ON journal BEGIN SELECT RAISE(ABORT, 'disk full'); END`,
      );
      const q = { node: 'local', resource: 'r' };
      await expect(store.lease(q)).rejects.toThrow('disk full');
      expect((await store.status(pkg)).commands[0]?.state).toBe('ready');
      other.exec('DROP TRIGGER refuse');
      other.close();
      const lease = await store.lease(q);
      expect(lease?.commandId).toBe('a');
      await store.ack(lease!, { ok: true });
      expect((await store.status(pkg)).state).toBe('succeeded');
    },
  );
});
