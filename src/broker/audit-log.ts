import { createWriteStream, renameSync, statSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { finished } from 'node:stream/promises';
import type { BrokerEvent } from './broker-types.js';

/** How long transitions wait in memory before they are appended, at most. */
const flushEveryMs = 50;
/** Lines after which the buffer is written at once. */
const flushLines = 4096;

/** When the log is rotated, and how many rotated files are kept. */
export interface AuditRotation {
  /** The size past which `audit.ndjson` becomes `audit.ndjson.1` and a new one starts. */
  maxBytes: number;
  /** Rotated files kept (`.1` the newest); older ones are removed. */
  keep: number;
}

/** 64 MiB a file, eight of them kept: a long-running daemon's log stays under 600 MiB. */
export const defaultAuditRotation: AuditRotation = { maxBytes: 64 * 1024 * 1024, keep: 8 };

/**
 * The machine-readable log of every transition: one JSON object a line, appended to
 * `$SPIN_HOME/audit.ndjson`. The event that adds a command carries its whole spec, so the log is
 * enough to recreate every message. The store is the source of truth; the log is written after
 * each commit is durable, in batches (every 50 ms, or 4,096 lines), so a crash may lose its last
 * lines but never invents one. With `rotation` (the broker that owns the home), a full file is
 * renamed `audit.ndjson.1`, the older ones shifted up, and the oldest past `keep` dropped;
 * lines still on their way to a renamed file land in it, since its descriptor stays open.
 */
export class AuditLog {
  readonly #path: string;
  readonly #rotation: AuditRotation | undefined;
  #stream: WriteStream;
  #size: number;
  /** Streams of rotated files still writing their last lines. */
  readonly #closing = new Set<Promise<void>>();
  #buffer: string[] = [];
  readonly #timer: NodeJS.Timeout;
  #scheduled = false;

  constructor(path: string, rotation?: AuditRotation) {
    this.#path = path;
    this.#rotation = rotation;
    this.#stream = this.#open();
    this.#size = statSync(path, { throwIfNoEntry: false })?.size ?? 0;
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

  /** Writes what is buffered and closes the file. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#flush();
    this.#retire(this.#stream);
    await Promise.all(this.#closing);
  }

  /** Ends a stream; `close` waits for it until it has written its last lines. */
  #retire(stream: WriteStream): void {
    stream.end();
    const done: Promise<void> = finished(stream)
      .catch(() => undefined)
      .then(() => {
        this.#closing.delete(done);
      });
    this.#closing.add(done);
  }

  #open(): WriteStream {
    const stream = createWriteStream(this.#path, { flags: 'a', mode: 0o600 });
    stream.on('error', () => {
      // A full disk must not take the broker down; the store still holds every transition.
    });
    return stream;
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#buffer.length === 0) return;
    const text = this.#buffer.join('\n') + '\n';
    this.#buffer = [];
    this.#stream.write(text);
    this.#size += Buffer.byteLength(text);
    if (this.#rotation !== undefined && this.#size >= this.#rotation.maxBytes) {
      this.#rotate(this.#rotation.keep);
    }
  }

  #rotate(keep: number): void {
    try {
      for (let i = keep - 1; i >= 1; i--) renameIfThere(`${this.#path}.${String(i)}`, i + 1);
      renameSync(this.#path, `${this.#path}.1`);
    } catch {
      // Rotation is housekeeping: if the directory refuses, keep appending where we are.
      return;
    }
    this.#retire(this.#stream);
    this.#stream = this.#open();
    this.#size = 0;
  }
}

/** Renames `path` to the same name ending `.next`, if it exists (replacing what was there). */
function renameIfThere(path: string, next: number): void {
  try {
    renameSync(path, path.replace(/\.\d+$/, `.${String(next)}`));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Appends one entry of another process's making (a VM supervisor's events, see
 * src/agents/emulation/vm-supervisor.ts) to the audit log at `path`: one line, in one append
 * (`O_APPEND`: it never lands inside a line of the broker's), opening the file each time, so an
 * entry made after the broker rotated the log lands in the new file. For rare events only.
 */
export async function appendAuditEntry(
  path: string,
  entry: { type: string; at: number },
): Promise<void> {
  await appendFile(path, `${JSON.stringify(entry)}\n`, { mode: 0o600 });
}
