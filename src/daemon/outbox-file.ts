import {
  closeSync,
  constants,
  fstatSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

/**
 * The one result an agent owes the coordinator for one queue, in a file it keeps open: written
 * before the result is sent, emptied once the coordinator answered. A result is one `write` at
 * the start of an empty file, so a killed agent leaves the whole result or none, and the page
 * cache keeps it for the next start. It is not synced: a power loss of the node may lose it, and
 * the command then runs again, as one does whose machine died while it ran (the broker's store
 * makes the same trade, see README "Broker").
 */
export class OutboxFile<T> {
  readonly #fd: number;
  #closed = false;

  constructor(path: string) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  }

  /** What is kept, if anything; a torn or unreadable record is dropped. */
  read(): T | undefined {
    const size = fstatSync(this.#fd).size;
    if (size === 0) return undefined;
    const buffer = Buffer.alloc(size);
    readSync(this.#fd, buffer, 0, size, 0);
    try {
      return JSON.parse(buffer.toString('utf8')) as T;
    } catch {
      this.clear();
      return undefined;
    }
  }

  /** Keeps `value` (the file is empty: one result is owed at a time). */
  keep(value: T): void {
    writeSync(this.#open(), JSON.stringify(value) + '\n', 0);
  }

  /** Forgets what was kept: the coordinator has answered it. */
  clear(): void {
    ftruncateSync(this.#open(), 0);
  }

  /** The descriptor, never once closed: its number may belong to another file by then. */
  #open(): number {
    if (this.#closed) throw new Error('Internal error: the outbox file is closed');
    return this.#fd;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeSync(this.#fd);
  }
}
