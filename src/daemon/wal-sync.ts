import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

/** Called once a commit is durable, or with the error that keeps it from being so. */
export type DurableCallback = (error?: Error) => void;

/**
 * Makes the commits of a SQLite database in WAL mode durable by syncing its `-wal` file, the way
 * `synchronous=FULL` does at each commit, but shared: one sync at a time, covering every commit
 * written before it started. Commits made while a sync runs wait for the next one, which starts
 * as soon as the running one ends. Meanwhile the event loop goes on, so the next batch is built
 * and written while the disk flushes the last (the group commit of DESIGN.md, pipelined).
 *
 * The connection runs with `synchronous=NORMAL`: its commits reach the file (the page cache) but
 * are not flushed; a checkpoint still flushes the WAL before copying it into the database.
 */
export class WalSync {
  readonly #path: string;
  #fd: number | undefined;
  #running = false;
  #waiting: DurableCallback[] = [];
  #failure: Error | undefined;
  #drained: (() => void)[] = [];

  /** @param database the database file; its WAL is `<database>-wal`. */
  constructor(database: string) {
    this.#path = `${database}-wal`;
  }

  /**
   * Makes everything committed so far durable, then calls `done`. With `inline`, when no sync is
   * running, the sync runs at once on this thread: the shortest wait for a lone consumer.
   */
  afterCommit(done: DurableCallback, inline = false): void {
    if (this.#failure) {
      done(this.#failure);
      return;
    }
    if (this.#running) {
      this.#waiting.push(done);
      return;
    }
    if (inline) {
      try {
        fdatasyncSync(this.#file());
      } catch (error) {
        this.#fail(error);
        done(this.#failure);
        return;
      }
      done();
      return;
    }
    this.#start([done]);
  }

  /** Resolves once every commit handed over so far is durable (or failed); then closes the file. */
  async close(): Promise<void> {
    if (this.#running) {
      await new Promise<void>((resolve) => {
        this.#drained.push(resolve);
      });
    }
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #start(callbacks: DurableCallback[]): void {
    let fd: number;
    try {
      fd = this.#file();
    } catch (error) {
      this.#fail(error);
      for (const done of callbacks) done(this.#failure);
      return;
    }
    this.#running = true;
    fdatasync(fd, (error) => {
      this.#running = false;
      if (error) this.#fail(error);
      for (const done of callbacks) done(this.#failure);
      if (this.#restarted()) return;
      const next = this.#waiting;
      this.#waiting = [];
      if (next.length > 0) this.#start(next);
      else for (const resolve of this.#drained.splice(0)) resolve();
    });
  }

  /** Whether a callback of the flush that just ended started the next one already. */
  #restarted(): boolean {
    return this.#running;
  }

  #file(): number {
    this.#fd ??= openSync(this.#path, 'r');
    return this.#fd;
  }

  /**
   * A failed flush leaves it unknown what reached the disk, and a retried fsync may report
   * success over lost pages: every later commit fails too, until the store is opened again.
   */
  #fail(error: unknown): void {
    const cause = error instanceof Error ? error : new Error(String(error));
    this.#failure ??= new Error(`the store could not flush its journal: ${cause.message}`, {
      cause,
    });
  }
}
