import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import Database from 'better-sqlite3';
import { SqliteQueueStore } from '../../src/broker/sqlite-queue-store.js';
import { schemaVersion } from '../../src/broker/sqlite-schema.js';
import type { PackageOwner } from '../../src/broker/broker-types.js';
import type { SpinError } from '../../src/core/errors.js';
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

describe('SQLite store on disk', () => {
  const q = { node: 'local', resource: 'r' };

  it('answers an ack and the lease beside it from one commit', async () => {
    const store = openStore({ path: join(testHome(), 'broker.db') });
    const pkg = await store.createPackage();
    await store.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b', needs: ['a'] })]);
    await store.enqueue(pkg);
    const a = await store.lease(q);
    const before = store.stats().commits;
    const [, b] = await Promise.all([store.ack(a!, { ok: true }), store.lease(q)]);
    expect(b?.commandId).toBe('b');
    expect(store.stats().commits).toBe(before + 1);
  });

  it('reopens with every change after a close, and a second connection sees them at once', async () => {
    const path = join(testHome(), 'broker.db');
    const first = openStore({ path });
    const pkg = await first.createPackage({ name: 'kept' });
    await first.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b', needs: ['a'] })]);
    await first.enqueue(pkg);
    const a = await first.lease(q);
    await first.ack(a!, { ok: true, output: { n: 1 } });
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

describe('SQLite store written by an earlier spin', () => {
  it('opens a schema-1 or schema-2 store with its packages and queues intact', async () => {
    for (const version of ['1', '2']) {
      const home = testHome();
      const path = join(home, 'broker.db');
      const first = openStore({ path });
      const pkg = await first.createPackage({ name: 'old' });
      await first.addCommands(pkg, [cmd('r', { id: 'a' }), cmd('r', { id: 'b' })]);
      await first.enqueue(pkg);
      await first.close();
      // What schema 2 left after a clean close: the same tables and an empty journal.
      const db = openDatabase(path);
      if (version === '2') db.exec('CREATE TABLE journal (seq INTEGER PRIMARY KEY, patches TEXT)');
      db.prepare(`UPDATE meta SET value = ? WHERE key = 'schema'`).run(version);
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
      expect(check.prepare(`SELECT value FROM meta WHERE key = 'schema'`).pluck().get()).toBe(
        String(schemaVersion),
      );
      expect(
        check.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'journal'`).pluck().get(),
      ).toBe(0);
      check.close();
    }
  });

  it('opens a schema-4 store, which kept what a package carries in its row, with it intact', async () => {
    const path = join(testHome(), 'broker.db');
    const first = openStore({ path });
    const pkg = await first.createPackage({ name: 'old', meta: { file: 'old.spin.yaml' } });
    await first.close();
    const db = openDatabase(path);
    db.exec(`ALTER TABLE packages ADD COLUMN meta TEXT;
      UPDATE packages SET meta = (SELECT meta FROM package_meta WHERE package_id = packages.id);
      DROP TABLE package_meta; UPDATE meta SET value = '4' WHERE key = 'schema'`);
    db.close();
    const reopened = openStore({ path });
    expect((await reopened.results(pkg)).meta).toEqual({ file: 'old.spin.yaml' });
    await reopened.close();
  });

  it('refuses a schema-2 store whose journal holds changes, and one of a newer spin, saying what to do', () => {
    const home = testHome();
    const path = join(home, 'broker.db');
    new SqliteQueueStore({ path }).close().catch(() => undefined);
    const db = openDatabase(path);
    db.exec(`CREATE TABLE journal (seq INTEGER PRIMARY KEY, patches TEXT);
      INSERT INTO journal VALUES (1, '[]'); UPDATE meta SET value = '2' WHERE key = 'schema'`);
    db.close();
    const refusal = (): SpinError => {
      try {
        new SqliteQueueStore({ path }).close().catch(() => undefined);
      } catch (error) {
        return error as SpinError;
      }
      throw new Error('expected a refusal');
    };
    expect(refusal()).toMatchObject({ code: 'state_conflict', exitCode: 3 });
    expect(refusal().message).toContain('holds 1 changes');
    const again = openDatabase(path);
    again.exec(`DROP TABLE journal; UPDATE meta SET value = '99' WHERE key = 'schema'`);
    again.close();
    expect(refusal().message).toContain('written by a newer spin (store schema 99');
    expect(refusal().suggestions.join(' ')).toContain('move');
  });
});

describe('SQLite store whose commit fails', () => {
  it.each(['full', 'normal'] as const)(
    'rejects the operation, keeps nothing of it, and goes on once the file takes writes (%s)',
    async (synchronous) => {
      const path = join(testHome(), 'broker.db');
      const store = openStore({ path, synchronous });
      const pkg = await store.createPackage();
      await store.addCommands(pkg, [cmd('r', { id: 'a' })]);
      await store.enqueue(pkg);
      // Another connection makes every write of a command fail.
      const other = openDatabase(path);
      other.exec(
        `CREATE TRIGGER refuse BEFORE UPDATE ON commands BEGIN SELECT RAISE(ABORT, 'refused'); END`,
      );
      const q = { node: 'local', resource: 'r' };
      await expect(store.lease(q)).rejects.toThrow('refused');
      expect((await store.status(pkg)).commands[0]?.state).toBe('ready');
      other.exec('DROP TRIGGER refuse');
      const lease = await store.lease(q);
      expect(lease?.commandId).toBe('a');
      await store.ack(lease!, { ok: true });
      expect((await store.status(pkg)).state).toBe('succeeded');
    },
  );

  it('on a full disk says no_space naming the file, loses nothing committed, and works once space is freed', async () => {
    expect(
      process.getuid?.(),
      'this test mounts a 4 MiB tmpfs as a full disk and must run as root (CI does)',
    ).toBe(0);
    const dir = join(testHome(), 'disk');
    mkdirSync(dir);
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir], {
      encoding: 'utf8',
    });
    expect(mounted.status, `mount -t tmpfs failed: ${mounted.stderr}`).toBe(0);
    onTestFinished(() => {
      execFileSync('umount', ['-l', dir]);
    });
    const path = join(dir, 'broker.db');
    const store = openStore({ path });
    const pkg = await store.createPackage({ name: 'kept' });
    await store.addCommands(pkg, [cmd('r', { id: 'a' })]);
    // Fill what is left of the disk.
    const filler = join(dir, 'filler');
    const fd = openSync(filler, 'w');
    try {
      for (;;) writeSync(fd, Buffer.alloc(64 * 1024));
    } catch (error) {
      expect((error as NodeJS.ErrnoException).code).toBe('ENOSPC');
    } finally {
      closeSync(fd);
    }
    const big = Array.from({ length: 200 }, () => cmd('r', { params: { pad: 'x'.repeat(4096) } }));
    const refused = await store.addCommands(pkg, big).then(
      () => undefined,
      (error: unknown) => error as SpinError,
    );
    expect(refused).toMatchObject({ code: 'no_space', exitCode: 1 });
    expect(refused?.message).toContain(path);
    expect((await store.status(pkg)).commands.map((c) => c.id)).toEqual(['a']);
    rmSync(filler);
    expect(await store.addCommands(pkg, big)).toHaveLength(200);
    await store.enqueue(pkg);
    expect((await store.status(pkg)).commands).toHaveLength(201);
  });
});

describe('SQLite store: owned packages', () => {
  const q = { node: 'local', resource: 'r' };
  const owner = (pid: number): PackageOwner => ({
    pid,
    host: 'here',
    startTime: 1,
    command: 'spin apply',
  });

  it('cancels what a gone owner left, running commands and all; unowned packages are delivered again', async () => {
    const path = join(testHome(), 'broker.db');
    const dead = openStore({ path, owner: owner(1) });
    const owned = await dead.createPackage({ name: 'vm', owned: true });
    await dead.addCommands(owned, [
      cmd('r', { id: 'a' }),
      cmd('r', { id: 'b', needs: ['a'] }),
      cmd('r', { id: 'c' }),
    ]);
    await dead.enqueue(owned);
    const byHand = await dead.createPackage({ name: 'by-hand' });
    await dead.addCommands(byHand, [cmd('s', { id: 'x' })]);
    await dead.enqueue(byHand);
    expect((await dead.lease(q))?.commandId).toBe('a');
    expect((await dead.lease({ node: 'local', resource: 's' }))?.commandId).toBe('x');
    await dead.close(); // as kill -9 would leave it: a and x running

    const next = openStore({ path, owner: owner(2), isGone: (o) => o.pid === 1 });
    const events: string[] = [];
    next.subscribe((e) => {
      if (e.type === 'command') events.push(`${e.commandId} ${e.to}`);
    });
    const report = await next.recover();
    expect(report.redelivered).toBe(1);
    expect(report.cancelled).toEqual([
      {
        packageId: owned,
        name: 'vm',
        owner: owner(1),
        createdAt: expect.any(Number) as number,
        notStarted: 2,
        interrupted: ['a'],
        // What ran when its owner died is handed back too: whatever it made is spin's.
        finished: [
          expect.objectContaining({
            spec: expect.objectContaining({ id: 'a' }) as unknown,
            state: 'cancelled',
            attempt: 1,
            reason: 'spin apply (pid 1) died while it ran: its outcome is unknown',
          }),
        ],
      },
    ]);
    const status = await next.status(owned);
    expect(status.state).toBe('cancelled');
    expect(status.commands.map((c) => `${c.id} ${c.state}: ${c.reason ?? ''}`)).toEqual([
      'a cancelled: spin apply (pid 1) died while it ran: its outcome is unknown',
      'b cancelled: spin apply (pid 1) died before it ran',
      'c cancelled: spin apply (pid 1) died before it ran',
    ]);
    expect(events).toEqual(['a cancelled', 'b cancelled', 'c cancelled', 'x ready']);
    // Nothing of the gone owner's package is handed out again.
    expect(await next.lease(q)).toBeUndefined();
    expect((await next.lease({ node: 'local', resource: 's' }))?.commandId).toBe('x');
  });

  it('leaves the packages of a live owner alone', async () => {
    const path = join(testHome(), 'broker.db');
    const first = openStore({ path, owner: owner(1) });
    const pkg = await first.createPackage({ name: 'vm', owned: true });
    await first.addCommands(pkg, [cmd('r', { id: 'a' })]);
    await first.enqueue(pkg);
    await first.close();
    const next = openStore({ path, owner: owner(2), isGone: () => false });
    expect((await next.recover()).cancelled).toEqual([]);
    expect((await next.lease(q))?.commandId).toBe('a');
  });

  it('refuses to enqueue a package while another of its name runs, naming who runs it', async () => {
    const store = openStore({ path: join(testHome(), 'broker.db'), owner: owner(7) });
    const first = await store.createPackage({ name: 'vm', owned: true });
    await store.addCommands(first, [cmd('r', { id: 'a' })]);
    await store.enqueue(first);
    const second = await store.createPackage({ name: 'vm', owned: true });
    await store.addCommands(second, [cmd('r', { id: 'a' })]);
    const refused = await store.enqueue(second).then(
      () => undefined,
      (error: unknown) => error as SpinError,
    );
    expect(refused).toMatchObject({ code: 'state_conflict', exitCode: 3 });
    expect(refused?.message).toMatch(
      /^package vm is still being run by spin apply \(pid 7 on here\) since /,
    );
    expect((await store.status(second)).state).toBe('staged');
    // Packages built by hand are not owned: any number of one name may run.
    const byHand = await store.createPackage({ name: 'vm' });
    await store.addCommands(byHand, [cmd('r', { id: 'a' })]);
    expect(await store.enqueue(byHand)).toBe('enqueued');
    // Once the first has finished, the name is free again.
    const a = await store.lease(q);
    await store.ack(a!, { ok: true });
    expect(await store.enqueue(second)).toBe('enqueued');
  });
});
