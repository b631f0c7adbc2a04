/**
 * Runs operations that arrive close together in one transaction, so that they share one durable
 * commit (one fsync): the group commit of DESIGN.md. In a batch of several, each operation runs in
 * its own savepoint (see `isolating`), so one that throws is undone alone and rejects alone; the
 * others commit together. A batch of one needs no savepoint: its failure undoes the transaction.
 *
 * Operations queued in the same turn of the event loop are flushed together on `setImmediate`;
 * while a flush runs (it is synchronous), new arrivals wait for the next one.
 */
export class GroupCommit {
  readonly #pending: PendingOp[] = [];
  readonly #runBatch: (ops: (() => void)[]) => void;
  #scheduled = false;
  #closed = false;
  #isolating = false;
  /** Commits made and operations they carried: operations / commits is the group-commit gain. */
  readonly stats = { commits: 0, operations: 0 };

  /**
   * @param runBatch runs every function inside one transaction and commits it durably; each
   *   function must already isolate its own failure (a savepoint) and never throw out.
   */
  constructor(runBatch: (ops: (() => void)[]) => void) {
    this.#runBatch = runBatch;
  }

  /** Queues `op` for the next commit; resolves with its value once that commit is durable. */
  run<T>(op: () => T): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ op, resolve: resolve as (value: unknown) => void, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.flush();
        });
      }
    });
  }

  /**
   * Whether the batch being run holds several operations, so each must isolate its own failure
   * in a savepoint. False for a batch of one: a throw then rolls the whole transaction back.
   */
  get isolating(): boolean {
    return this.#isolating;
  }

  /** Commits everything queued now, synchronously. */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#pending.splice(0);
    const [single] = batch;
    if (single === undefined) return;
    this.stats.commits++;
    this.stats.operations += batch.length;
    if (batch.length === 1) {
      this.#isolating = false;
      let value: unknown;
      try {
        this.#runBatch([() => (value = single.op())]);
      } catch (error) {
        single.reject(error);
        return;
      }
      single.resolve(value);
      return;
    }
    this.#isolating = true;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    try {
      this.#runBatch(
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
    batch.forEach((entry, i) => {
      const outcome = outcomes[i];
      if (outcome === undefined) entry.reject(new Error('Internal error: operation not run'));
      else if (outcome.ok) entry.resolve(outcome.value);
      else entry.reject(outcome.error);
    });
  }

  /** Flushes what is queued and refuses anything after. */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}

interface PendingOp {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}
