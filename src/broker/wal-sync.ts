import { SpinError } from '../core/errors.js';
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';

/** Called once a commit is durable, or with the error that keeps it from being so. */
export type DurableCallback = (error?: Error) => void;

/**
 * Makes the commits of a SQLite database in WAL mode durable by syncing its `-wal` file, as
 * `synchronous=FULL` does at each commit, but off the event loop: the next batch is built while
 * the disk flushes the last. Flushes run one after another, each covering every commit written
 * before it started; `GroupCommit` decides how many commits one flush covers.
 *
 * The connection runs with `synchronous=NORMAL`: its commits reach the file (the page cache) but
 * are not flushed; a checkpoint still flushes the WAL before copying it into the database.
 */
export class WalSync {
  readonly #path: string;
  #fd: number | undefined;
  /** The flushes asked for, chained; resolves when the last one ended. */
  #last: Promise<void> = Promise.resolve();
  #running = 0;
  #failure: Error | undefined;

  /** @param database the database file; its WAL is `<database>-wal`. */
  constructor(database: string) {
    this.#path = `${database}-wal`;
  }

  /**
   * Makes everything committed so far durable, then calls `done`. With `inline`, when no flush is
   * running, it runs at once on this thread: the shortest wait for a lone consumer.
   */
  afterCommit(done: DurableCallback, inline = false): void {
    if (this.#failure) {
      done(this.#failure);
      return;
    }
    if (inline && this.#running === 0) {
      try {
        fdatasyncSync(this.#file());
      } catch (error) {
        this.#fail(error);
      }
      done(this.#failure);
      return;
    }
    this.#running++;
    this.#last = this.#last.then(
      () =>
        new Promise<void>((resolve) => {
          const finish = (error?: unknown): void => {
            if (error) this.#fail(error);
            this.#running--;
            done(this.#failure);
            resolve();
          };
          try {
            fdatasync(this.#file(), finish);
          } catch (error) {
            finish(error);
          }
        }),
    );
  }

  /** Resolves once every flush asked for has ended; then closes the file. */
  async close(): Promise<void> {
    await this.#last;
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
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
    this.#failure ??= new SpinError(
      'store_failed',
      `The broker store could not flush its journal: ${cause.message}`,
      { cause },
    );
  }
}
