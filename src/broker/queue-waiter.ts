import type { BrokerEvent, QueueKey } from './broker-types.js';

/**
 * Wakes consumers waiting for work on a queue. A queue may have work when one of its commands
 * becomes `ready` or leaves `running`; a retry whose backoff ends makes no event, so waiters also
 * wake every `pollMs` and try again.
 */
export class QueueWaiter {
  readonly #waiting = new Map<string, Set<() => void>>();
  readonly #generations = new Map<string, number>();
  readonly #pollMs: number;

  constructor(pollMs = 200) {
    this.#pollMs = pollMs;
  }

  /** Feeds a broker event; wakes the waiters of its queue when it may have freed work. */
  notify(event: BrokerEvent): void {
    if (event.type !== 'command') return;
    if (event.to !== 'ready' && event.from !== 'running') return;
    const key = keyOf(event);
    this.#generations.set(key, (this.#generations.get(key) ?? 0) + 1);
    const waiters = this.#waiting.get(key);
    if (waiters === undefined) return;
    for (const wake of [...waiters]) wake();
  }

  /**
   * A counter of a queue's wake-ups. Read it before trying to lease and pass it to `wait`: a
   * wake-up in between (the same commit as the failed lease) then ends the wait at once.
   */
  generation(queue: QueueKey): number {
    return this.#generations.get(keyOf(queue)) ?? 0;
  }

  /** Resolves on the next wake-up of `queue`, after `pollMs`, `limitMs` or an abort, first wins. */
  wait(queue: QueueKey, since: number, limitMs: number, signal?: AbortSignal): Promise<void> {
    const key = keyOf(queue);
    if ((this.#generations.get(key) ?? 0) !== since || signal?.aborted === true) {
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      let set = this.#waiting.get(key);
      if (set === undefined) this.#waiting.set(key, (set = new Set()));
      const waiters = set;
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0) this.#waiting.delete(key);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, Math.min(limitMs, this.#pollMs)));
      waiters.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  /** Wakes every waiter, e.g. on close. */
  wakeAll(): void {
    for (const waiters of this.#waiting.values()) for (const wake of [...waiters]) wake();
  }
}

function keyOf(queue: QueueKey): string {
  return `${queue.node}\u0000${queue.resource}`;
}
