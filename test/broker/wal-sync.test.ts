import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it, onTestFinished } from 'vitest';
import { GroupCommit } from '../../src/broker/group-commit.js';
import { WalSync } from '../../src/broker/wal-sync.js';
import { testHome } from '../support/broker-helpers.js';

describe('durable commits through WalSync', () => {
  it('flushes the WAL of a real database; close waits for the flush under way', async () => {
    const path = join(testHome(), 'broker.db');
    const db = new Database(path);
    onTestFinished(() => {
      if (db.open) db.close();
    });
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (n INTEGER)');
    const insert = db.prepare('INSERT INTO t (n) VALUES (?)');
    const walSync = new WalSync(path);
    onTestFinished(() => walSync.close());
    const commits = new GroupCommit(
      {
        begin: () => {
          db.prepare('BEGIN IMMEDIATE').run();
          return true;
        },
        commit: () => {
          db.prepare('COMMIT').run();
          return { wrote: true, durable: () => undefined };
        },
      },
      (done, inline) => {
        walSync.afterCommit(done, inline);
      },
    );
    const results = await Promise.all([1, 2, 3].map((n) => commits.run(() => insert.run(n))));
    expect(results.map((r) => r.changes)).toEqual([1, 1, 1]);
    // Two operations in one batch: flushed off the event loop, which close then waits for.
    let settled = 0;
    for (const n of [4, 5]) void commits.run(() => insert.run(n)).then(() => settled++);
    commits.flush();
    expect(settled).toBe(0);
    await walSync.close();
    expect(settled).toBe(2);
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
  });

  it('fails every later commit once a flush failed', async () => {
    // No database, so no WAL file to flush: the first flush fails, and so does every later one.
    const walSync = new WalSync(join(testHome(), 'missing.db'));
    onTestFinished(() => walSync.close());
    const failures: string[] = [];
    await new Promise<void>((resolve) => {
      walSync.afterCommit((error) => {
        failures.push(error?.message ?? 'none');
        resolve();
      });
    });
    walSync.afterCommit((error) => failures.push(error?.message ?? 'none'), true);
    expect(failures).toHaveLength(2);
    for (const message of failures) expect(message).toMatch(/could not flush its journal/);
  });
});
