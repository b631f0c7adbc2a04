import { createWriteStream } from 'node:fs';
import type { WriteStream } from 'node:fs';
import type { BrokerEvent } from './broker-types.js';

/** How long transitions wait in memory before they are appended, at most. */
const flushEveryMs = 50;
/** Lines after which the buffer is written at once. */
const flushLines = 4096;

/**
 * The machine-readable log of every transition: one JSON object a line, appended to
 * `$SPIN_HOME/audit.ndjson`. The event that adds a command carries its whole spec, so the log is
 * enough to recreate every message. The store is the source of truth; the log is written after
 * each commit is durable, in batches (every 50 ms, or 4,096 lines), so a crash may lose its last
 * lines but never invents one.
 */
export class AuditLog {
  readonly #stream: WriteStream;
  #buffer: string[] = [];
  readonly #timer: NodeJS.Timeout;
  #scheduled = false;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'a', mode: 0o600 });
    this.#stream.on('error', () => {
      // A full disk must not take the broker down; the store still holds every transition.
    });
    this.#timer = setTimeout(() => {
      this.#flush();
    }, flushEveryMs).unref();
  }

  /** Appends one event. */
  record(event: BrokerEvent): void {
    this.#buffer.push(JSON.stringify(event));
    if (this.#buffer.length >= flushLines) {
      this.#flush();
    } else if (!this.#scheduled) {
      this.#scheduled = true;
      this.#timer.refresh();
    }
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0) return;
    this.#stream.write(this.#buffer.join('\n') + '\n');
    this.#buffer = [];
  }

  /** Writes what is buffered and closes the file. */
  close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#flush();
    return new Promise((resolve) => {
      this.#stream.end(resolve);
    });
  }
}
