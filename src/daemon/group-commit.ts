import type { DurableCallback } from './wal-sync.js';

/**
 * Runs operations that arrive close together in one transaction, so that they share one durable
 * commit (one fsync): the group commit of DESIGN.md. Each operation isolates its own failure (it
 * undoes what it did and throws); one that throws rejects alone, the others commit together.
 *
 * Operations queued in the same turn of the event loop are flushed together on `setImmediate`.
 * A flush writes its transaction synchronously; with a `sync`, the promises resolve only once
 * that has made the commit durable, and the next flush may be written meanwhile.
 */
export class GroupCommit {
  readonly #pending: PendingOp[] = [];
  readonly #runBatch: RunBatch;
  readonly #sync: Sync | undefined;
  #scheduled = false;
  #closed = false;
  /** Commits made and operations they carried: operations / commits is the group-commit gain. */
  readonly stats = { commits: 0, operations: 0 };

  /**
   * @param runBatch runs every function inside one transaction and commits it; returns what to do
   *   once the commit is durable (emit its events). Each function catches its own failure.
   * @param sync makes what was committed durable and calls back; `inline` when the batch held
   *   one operation. Without it, a commit is durable when `runBatch` returns.
   */
  constructor(runBatch: RunBatch, sync?: Sync) {
    this.#runBatch = runBatch;
    this.#sync = sync;
  }

  /**
   * Queues `op` for the next commit; resolves with its value once that commit is durable, or as
   * soon as it is written when `early` says the value may go out before (a lease: see the store).
   */
  run<T>(op: () => T, early?: (value: T) => boolean): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
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

  /** Commits everything queued now. */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.splice(0);
    if (batch.length === 0) return;
    this.stats.commits++;
    this.stats.operations += batch.length;
    const outcomes: Outcome[] = [];
    let durable: (() => void) | undefined;
    try {
      durable = this.#runBatch(
        batch.map((entry) => () => {
          try {
            outcomes.push({ ok: true, value: entry.op() });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }),
      );
    } catch (error) {
      // The commit itself failed (disk full, I/O error): nothing of the batch is durable.
      for (const entry of batch) entry.reject(error);
      return;
    }
    const waiting = this.#sync ? this.#releaseEarly(batch, outcomes) : batch;
    const settle: DurableCallback = (error) => {
      if (error) {
        for (const entry of waiting) entry.reject(error);
        return;
      }
      durable?.();
      batch.forEach((entry, i) => {
        if (!waiting.includes(entry)) return;
        const outcome = outcomes[i];
        if (outcome === undefined) entry.reject(new Error('Internal error: operation not run'));
        else if (outcome.ok) entry.resolve(outcome.value);
        else entry.reject(outcome.error);
      });
    };
    if (this.#sync) this.#sync(settle, batch.length === 1);
    else settle();
  }

  /** Resolves the operations whose value may go out before it is durable; returns the rest. */
  #releaseEarly(batch: PendingOp[], outcomes: Outcome[]): PendingOp[] {
    const waiting: PendingOp[] = [];
    batch.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (outcome?.ok === true && entry.early?.(outcome.value) === true) {
        entry.resolve(outcome.value);
      } else {
        waiting.push(entry);
      }
    });
    return waiting;
  }

  /** Flushes what is queued and refuses anything after. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}

type RunBatch = (ops: (() => void)[]) => (() => void) | undefined;
type Sync = (done: DurableCallback, inline: boolean) => void;
type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

interface PendingOp {
  op: () => unknown;
  early: ((value: unknown) => boolean) | undefined;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}
