import { SpinError } from '../core/errors.js';
import type { DurableCallback } from './wal-sync.js';

/** Where a group commit writes: a transaction opened, then committed (or abandoned). */
export interface CommitTarget {
  /**
   * Opens the write transaction the next operations run in; false when another connection holds
   * the write lock right now (the group commit tries again shortly, without blocking).
   */
  begin(): boolean;
  /**
   * Commits the open transaction; returns whether it wrote anything, and what to do once it is
   * durable (emit its events). If it throws, the transaction is abandoned and the target is back
   * in the state of the file.
   */
  commit(): { wrote: boolean; durable: () => void };
}

/**
 * Runs operations that arrive close together in one transaction, so that they share one durable
 * commit (one fsync): a group commit. Each operation isolates its own failure (it
 * undoes what it did and throws); one that throws rejects at once, alone.
 *
 * Operations queued in the same turn of the event loop run together on `setImmediate`. Without
 * a `sync`, each turn commits and its operations resolve. With one, a commit is made durable by
 * `sync` off the event loop, and while that runs the transaction stays open: the operations of
 * the turns meanwhile run in it and are committed, together, when the flush ends. So a queue
 * whose consumer asks for its next lease before its ack is flushed (see the store's `lease`) is
 * not held to one commit per command: the disk flushes as often as it can, each time everything
 * written since the last.
 */
export class GroupCommit {
  readonly #pending: PendingOp[] = [];
  readonly #target: CommitTarget;
  readonly #sync: Sync | undefined;
  /** Operations run in the open transaction, waiting for its commit and flush. */
  readonly #uncommitted: Settled[] = [];
  #scheduled = false;
  #closed = false;
  #open = false;
  #flushing = false;
  /** Why the last commit failed. */
  #failure: unknown;
  /** Since when `begin` has found the write lock taken; undefined while it is not. */
  #lockedSince: number | undefined;
  /** Whether an operation of the open transaction resolved before its flush. */
  #early = false;
  /** Commits made and operations they carried: operations / commits is the group-commit gain. */
  readonly stats = { commits: 0, operations: 0 };

  /**
   * @param sync makes what was committed durable and calls back; `inline` when one operation
   *   waits and nothing went on without waiting, so it may be flushed on this thread. Without
   *   it, a commit is durable once made.
   */
  constructor(target: CommitTarget, sync?: Sync) {
    this.#target = target;
    this.#sync = sync;
  }

  /**
   * Queues `op` for the next commit; resolves with its value once that commit is durable, or as
   * soon as it ran when `early` says the value may go out before (a lease: see the store).
   */
  run<T>(op: () => T, early?: (value: T) => boolean): Promise<T> {
    if (this.#closed) return Promise.reject(storeClosed());
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({
        op,
        early: early as ((value: unknown) => boolean) | undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.flush();
        });
      }
    });
  }

  /** Runs everything queued now, and commits unless a flush is under way. */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    if (!this.#open) {
      let began: boolean;
      try {
        began = this.#target.begin();
      } catch (error) {
        for (const entry of batch) entry.reject(error);
        return;
      }
      if (!began) {
        this.#pending.unshift(...batch);
        this.#retryLater();
        return;
      }
      this.#lockedSince = undefined;
      this.#open = true;
    }
    this.stats.operations += batch.length;
    const early: Settled[] = [];
    for (const entry of batch) {
      let value: unknown;
      try {
        value = entry.op();
      } catch (error) {
        entry.reject(error);
        continue;
      }
      const settled = { value, resolve: entry.resolve, reject: entry.reject };
      if (this.#sync !== undefined && entry.early?.(value) === true) early.push(settled);
      else this.#uncommitted.push(settled);
    }
    this.#early ||= early.length > 0;
    // While a flush runs, the open transaction holds the write lock: what ran in it is what every
    // connection will see next, so an early value may go out now. Otherwise it goes out once
    // committed, and fails with the commit.
    if (this.#flushing || this.#commit()) {
      for (const entry of early) entry.resolve(entry.value);
    } else {
      for (const entry of early) entry.reject(this.#failure);
    }
  }

  /**
   * Another connection holds the write lock: look again in a millisecond, keeping the event loop
   * free (a flush of this process may be what the other waits for), and give up after 10 s.
   */
  #retryLater(): void {
    const now = Date.now();
    this.#lockedSince ??= now;
    if (now - this.#lockedSince > lockWaitMs) {
      this.#lockedSince = undefined;
      const error = new SpinError(
        'lock_held',
        `The broker store stayed locked by another process for ${String(lockWaitMs / 1000)} s.`,
        { retryable: true },
      );
      for (const entry of this.#pending.splice(0)) entry.reject(error);
      return;
    }
    this.#scheduled = true;
    setTimeout(() => {
      this.flush();
    }, 1);
  }

  /**
   * Commits the open transaction and has it flushed; operations resolve once it is durable.
   * Returns whether the commit succeeded (else `#failure` holds why).
   */
  #commit(): boolean {
    const group = this.#uncommitted.splice(0);
    let committed: { wrote: boolean; durable: () => void };
    try {
      committed = this.#target.commit();
    } catch (error) {
      // The commit failed (disk full, I/O error): nothing of the transaction is durable.
      this.#open = false;
      this.#early = false;
      this.#failure = error;
      for (const entry of group) entry.reject(error);
      return false;
    }
    this.#open = false;
    this.stats.commits++;
    // A lone operation with nobody going on meanwhile is flushed at once, on this thread.
    const inline = group.length === 1 && !this.#early;
    this.#early = false;
    const settle: DurableCallback = (error) => {
      this.#flushing = false;
      if (error) {
        for (const entry of group) entry.reject(error);
      } else {
        committed.durable();
        for (const entry of group) entry.resolve(entry.value);
      }
      // What ran during the flush is committed now, and flushed in turn.
      if (this.#open) void this.#commit();
    };
    // Nothing to flush when nothing was written (a lease that found no work): every earlier
    // commit is flushed already, since none is made while a flush runs.
    if (this.#sync === undefined || !committed.wrote) {
      settle();
      return true;
    }
    this.#flushing = true;
    this.#sync(settle, inline);
    return true;
  }

  /** Commits what is queued (its flush may still run) and refuses anything after. */
  close(): void {
    this.flush();
    this.#closed = true;
    const error = storeClosed();
    for (const entry of this.#pending.splice(0)) entry.reject(error);
  }
}

/** Work that reached a store after it was closed: the broker is going away. */
function storeClosed(): SpinError {
  return new SpinError('unreachable', 'The broker store is closed.', { retryable: true });
}

/** How long a write waits for another connection's write lock. */
const lockWaitMs = 10_000;

type Sync = (done: DurableCallback, inline: boolean) => void;

interface PendingOp {
  op: () => unknown;
  early: ((value: unknown) => boolean) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

interface Settled {
  value: unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}
