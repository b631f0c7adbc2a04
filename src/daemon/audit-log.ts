import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { BrokerEvent } from './broker-types.js';

/**
 * The machine-readable log of every transition: one JSON object a line, appended to
 * `$SPIN_HOME/audit.ndjson`. The event that adds a command carries its whole spec, so the log is
 * enough to recreate every message. The store is the source of truth; the log is written after
 * each commit, a turn of the event loop at a time, so a crash may lose its last lines but never
 * invents one.
 */
export class AuditLog {
  readonly #stream: WriteStream;
  #buffer: string[] = [];
  #scheduled = false;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', () => {
      // A full disk must not take the broker down; the store still holds every transition.
    });
  }

  /** Appends one event. */
  record(event: BrokerEvent): void {
    this.#buffer.push(JSON.stringify(event));
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#flush();
    });
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0) return;
    this.#stream.write(this.#buffer.join('\n') + '\n');
    this.#buffer = [];
  }

  /** Writes what is buffered and closes the file. */
  close(): Promise<void> {
    this.#flush();
    return new Promise((resolve) => {
      this.#stream.end(resolve);
    });
  }
}
