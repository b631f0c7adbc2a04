import { createConnection, type Socket } from 'node:net';
import { SpinError } from '../../core/errors.js';
import { abortedError } from '../abort.js';

/** An asynchronous event qemu sent on the monitor (`SHUTDOWN`, `POWERDOWN`, …). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: SpinError) => void;
}

type Message = Record<string, unknown>;

/** Events kept for `waitForEvent` to find after they came; older ones are dropped. */
const maxKeptEvents = 64;

/** Options of `QmpClient.connect`. */
export interface QmpConnectOptions {
  /** How long to keep trying (the socket may not exist yet) and wait for the greeting. */
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Asked before each new try: false gives up at once (the qemu behind the socket is gone, so it
   * will never answer).
   */
  alive?: () => boolean;
}

function unreachable(message: string, cause?: unknown): SpinError {
  return new SpinError('unreachable', message, {
    retryable: true,
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * A small client of qemu's machine protocol (QMP) over a unix socket: connect, the
 * `qmp_capabilities` handshake, commands matched to replies by id, and events. One client at a time
 * per socket: qemu serves a single monitor connection on it.
 */
export class QmpClient {
  private buffer = '';
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly events: QmpEvent[] = [];
  private readonly waiters = new Set<(event: QmpEvent) => void>();
  private greeted: (() => void) | undefined;
  private greetingSeen = false;
  /** Resolves when the connection closes (for a VM, usually when qemu exits). */
  readonly closed: Promise<void>;
  /**
   * Resolves when qemu says it is going away: its `SHUTDOWN` event (the guest powered off, or a
   * `quit`), or the connection closing, whichever comes first.
   */
  readonly ending: Promise<void>;
  private shutdownSeen: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    this.ending = new Promise((resolve) => (this.shutdownSeen = resolve));
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        for (const p of this.pending.values()) p.reject(unreachable('The QMP connection closed.'));
        this.pending.clear();
        this.shutdownSeen?.();
        resolve();
      });
    });
    socket.on('error', () => {
      // 'close' follows and rejects whatever is pending.
    });
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (let nl = this.buffer.indexOf('\n'); nl >= 0; nl = this.buffer.indexOf('\n')) {
        const line = this.buffer.slice(0, nl).trim();
        this.buffer = this.buffer.slice(nl + 1);
        if (line !== '') this.receive(line);
      }
    });
  }

  /**
   * Connects to the QMP socket at `path`, retrying while it does not exist or refuses (after
   * 5 ms, then at doubling intervals up to 250 ms), until `timeoutMs`; then waits for the
   * greeting and negotiates capabilities. Throws `unreachable`.
   */
  static async connect(path: string, options: QmpConnectOptions): Promise<QmpClient> {
    const deadline = Date.now() + options.timeoutMs;
    let delay = 5;
    for (;;) {
      if (options.signal?.aborted === true) throw abortedError(options.signal, 'Connecting to QMP');
      try {
        const socket = await openSocket(path, Math.max(1, deadline - Date.now()));
        const client = new QmpClient(socket);
        await client.handshake(Math.max(1, deadline - Date.now()));
        return client;
      } catch (error) {
        const hopeless = options.alive !== undefined && !options.alive();
        if (Date.now() >= deadline || error instanceof SpinError || hopeless) {
          throw error instanceof SpinError
            ? error
            : unreachable(`QMP socket ${path} did not answer.`, error);
        }
        // Not there yet (qemu still starting): try again, at doubling intervals up to 250 ms.
        await new Promise((resolve) => setTimeout(resolve, Math.min(delay, deadline - Date.now())));
        delay = Math.min(delay * 2, 250);
      }
    }
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const greeting = new Promise<void>((resolve) => {
      if (this.greetingSeen) resolve();
      else this.greeted = resolve;
    });
    const closedEarly = this.closed.then(() => {
      throw unreachable('The QMP connection closed during the greeting.');
    });
    closedEarly.catch(() => undefined); // only observed through the race below
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(unreachable('qemu sent no QMP greeting in time.'));
      }, timeoutMs);
    });
    try {
      await Promise.race([greeting, timeout, closedEarly]);
      await Promise.race([this.execute('qmp_capabilities'), timeout]);
    } catch (error) {
      this.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private receive(line: string): void {
    let message: Message;
    try {
      message = JSON.parse(line) as Message;
    } catch {
      return; // qemu only sends JSON; a broken line is ignored rather than trusted.
    }
    if ('QMP' in message) {
      this.greetingSeen = true;
      this.greeted?.();
      return;
    }
    if (typeof message['event'] === 'string') {
      const event = message as unknown as QmpEvent;
      if (event.event === 'SHUTDOWN') this.shutdownSeen?.();
      this.events.push(event);
      // A connection held for a VM's lifetime (a supervisor's) must not gather events forever.
      if (this.events.length > maxKeptEvents) this.events.shift();
      for (const waiter of this.waiters) waiter(event);
      return;
    }
    const id = typeof message['id'] === 'string' ? message['id'] : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (id === undefined || pending === undefined) return;
    this.pending.delete(id);
    const error = message['error'] as { class?: string; desc?: string } | undefined;
    if (error !== undefined) {
      pending.reject(
        new SpinError('action_failed', `QMP error: ${error.desc ?? 'unknown'}`, {
          details: { class: error.class ?? null },
        }),
      );
    } else pending.resolve(message['return']);
  }

  /** Runs a QMP command and resolves with its `return` value; rejects on a QMP error or close. */
  execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    const id = `spin-${String(this.nextId++)}`;
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) {
        reject(unreachable('The QMP connection is closed.'));
        return;
      }
      this.pending.set(id, { resolve, reject });
      this.socket.write(
        `${JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id })}\n`,
      );
    });
  }

  /**
   * Resolves with the first event named `name` (including one already received), or undefined when
   * `timeoutMs` passes or the connection closes first.
   */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent | undefined> {
    const seen = this.events.find((e) => e.event === name);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const done = (event: QmpEvent | undefined): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve(event);
      };
      const waiter = (event: QmpEvent): void => {
        if (event.event === name) done(event);
      };
      const timer = setTimeout(() => {
        done(undefined);
      }, timeoutMs);
      this.waiters.add(waiter);
      void this.closed.then(() => {
        done(undefined);
      });
    });
  }

  /**
   * Calls `listener` with every event from now on, until the returned function is called or the
   * connection closes.
   */
  subscribe(listener: (event: QmpEvent) => void): () => void {
    this.waiters.add(listener);
    return () => {
      this.waiters.delete(listener);
    };
  }

  /** Closes the connection; pending commands are rejected. */
  close(): void {
    this.socket.destroy();
  }
}

function openSocket(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new SpinError('timeout', `Connecting to QMP at ${path} timed out`, { retryable: true }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
