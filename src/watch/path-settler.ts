import { stat } from 'node:fs/promises';

/**
 * Waits for files to settle before anyone reads them. Every `touch` of a path (a change seen by
 * the watcher) restarts its quiet period; when `settleMs` pass without one, the file's size and
 * mtime are compared with what they were when the period began, and a file that changed without
 * telling (a writer the watcher missed) gets another period. Only then is `onSettled` called —
 * once per burst of writes, whatever the burst's length. A file that is gone settles too: the
 * caller finds it missing.
 */
export class PathSettler {
  readonly #settleMs: number;
  readonly #onSettled: (path: string) => void;
  readonly #pending = new Map<string, { timer: NodeJS.Timeout; signature: Promise<string> }>();
  #closed = false;

  constructor(options: { settleMs: number; onSettled: (path: string) => void }) {
    this.#settleMs = options.settleMs;
    this.#onSettled = options.onSettled;
  }

  /** Notes a change of `path`: it settles `settleMs` after its last change. */
  touch(path: string): void {
    if (this.#closed) return;
    const previous = this.#pending.get(path);
    if (previous !== undefined) clearTimeout(previous.timer);
    const signature = signatureOf(path);
    const timer = setTimeout(() => {
      void this.#check(path, signature);
    }, this.#settleMs);
    this.#pending.set(path, { timer, signature });
  }

  /** Paths still waiting to settle. */
  get pending(): number {
    return this.#pending.size;
  }

  /** Forgets every pending path; nothing settles after this. */
  close(): void {
    this.#closed = true;
    for (const { timer } of this.#pending.values()) clearTimeout(timer);
    this.#pending.clear();
  }

  async #check(path: string, armed: Promise<string>): Promise<void> {
    const [before, now] = await Promise.all([armed, signatureOf(path)]);
    const entry = this.#pending.get(path);
    // Touched again meanwhile: the newer period decides.
    if (this.#closed || entry?.signature !== armed) return;
    if (before !== now) {
      const signature = Promise.resolve(now);
      const timer = setTimeout(() => {
        void this.#check(path, signature);
      }, this.#settleMs);
      this.#pending.set(path, { timer, signature });
      return;
    }
    this.#pending.delete(path);
    this.#onSettled(path);
  }
}

async function signatureOf(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${String(s.size)}:${String(s.mtimeMs)}:${String(s.ino)}`;
  } catch {
    return 'missing';
  }
}
