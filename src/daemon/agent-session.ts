import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { SpinError, messageOf } from '../core/errors.js';
import { runAgentRequest } from './broker-protocol.js';
import type { WireError } from '../core/errors.js';
import type { QueueConsumer } from '../broker/broker.js';
import type { AttemptRef, Lease } from '../broker/broker-types.js';
import { parseAgentRequest } from './wire-validation.js';
import { writeCorked } from './write-corked.js';
import type { AgentRequest } from './wire-validation.js';

/** The longest line an agent may send (an ack with its output). */
export const maxAgentLineBytes = 1024 * 1024;

/**
 * One agent's long-lived connection: newline-delimited JSON both ways, requests answered by id
 * and possibly out of order (a lease may wait while a renew is answered). An ack with
 * `next: true` is answered with the next lease, committed in the same transaction; acks of
 * several connections arriving together share one commit (the store's group commit). Leases the
 * connection still holds when it closes are released at once rather than left to expire.
 */
export class AgentSession {
  readonly #socket: Socket;
  readonly #consumer: QueueConsumer;
  /** The node the connection consumes for: every attempt it names must be of that node. */
  readonly #node: string;
  readonly #held = new Map<string, AttemptRef>();
  readonly #abort = new AbortController();
  #buffer = '';
  #closed = false;

  constructor(socket: Socket, consumer: QueueConsumer, head: Buffer, node: string) {
    this.#node = node;
    this.#socket = socket;
    this.#consumer = consumer;
    socket.setNoDelay(true);
    // An upgraded HTTP socket refuses setEncoding; decode here, safe across split characters.
    const decoder = new StringDecoder('utf8');
    socket.on('data', (chunk: Buffer) => {
      this.#receive(decoder.write(chunk));
    });
    // The HTTP server leaves sockets half-open; an agent that ends its side is gone.
    socket.on('end', () => {
      socket.end();
      void this.#shutdown();
    });
    socket.on('close', () => {
      void this.#shutdown();
    });
    socket.on('error', () => {
      // 'close' follows; the leases are released there.
    });
    if (head.length > 0) this.#receive(head.toString('utf8'));
  }

  /** Ends the connection, as on daemon shutdown. */
  close(): Promise<void> {
    this.#socket.end();
    return this.#shutdown();
  }

  #receive(chunk: string): void {
    this.#buffer += chunk;
    let newline = this.#buffer.indexOf('\n');
    while (newline >= 0) {
      const line = this.#buffer.slice(0, newline);
      this.#buffer = this.#buffer.slice(newline + 1);
      if (line.trim() !== '') this.#handleLine(line);
      newline = this.#buffer.indexOf('\n');
    }
    if (this.#buffer.length > maxAgentLineBytes) {
      this.#send({
        id: null,
        ok: false,
        error: { code: 'file_too_large', message: 'a request line is longer than 1 MiB' },
      });
      this.#socket.end();
      this.#buffer = '';
    }
  }

  #handleLine(line: string): void {
    let request: AgentRequest;
    let id: unknown = null;
    try {
      const value: unknown = JSON.parse(line);
      id = (value as { id?: unknown } | null)?.id ?? null;
      request = parseAgentRequest(value);
    } catch (error) {
      const message =
        error instanceof SyntaxError ? `not JSON: ${error.message}` : messageOf(error);
      const code = error instanceof SpinError ? error.code : 'invalid_input';
      this.#send({ id, ok: false, error: { code, message } });
      return;
    }
    this.#run(request).then(
      (reply) => {
        this.#send({ id: request.id, ok: true, ...reply });
      },
      (error: unknown) => {
        this.#send({ id: request.id, ok: false, error: wireErrorOf(error) });
      },
    );
  }

  async #run(request: AgentRequest): Promise<Record<string, unknown>> {
    if (request.op === 'ack' || request.op === 'release') this.#held.delete(keyOf(request.ref));
    return runAgentRequest(this.#consumer, request, {
      node: this.#node,
      signal: this.#abort.signal,
      hold: (lease) => this.#hold(lease),
    });
  }

  #hold(lease: Lease | undefined): Lease | undefined {
    if (lease === undefined) return undefined;
    if (this.#closed) {
      // The agent left while the lease was being granted: give it straight back.
      this.#consumer.release(lease).catch(() => undefined);
      return undefined;
    }
    this.#held.set(keyOf(lease), lease);
    return lease;
  }

  #send(message: Record<string, unknown>): void {
    if (!this.#closed && this.#socket.writable) {
      writeCorked(this.#socket, JSON.stringify(message) + '\n');
    }
  }

  async #shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort.abort();
    const held = [...this.#held.values()];
    this.#held.clear();
    await Promise.all(held.map((ref) => this.#consumer.release(ref).catch(() => undefined)));
    await this.#consumer.close();
  }
}

function keyOf(ref: AttemptRef): string {
  return `${ref.packageId}/${ref.commandId}/${ref.attemptId}`;
}

/** How a failure travels back to a client: its SpinError code, or `internal`. */
export function wireErrorOf(error: unknown): WireError {
  if (error instanceof SpinError) return error.toWire();
  return { code: 'internal', message: `Internal error: ${messageOf(error)}` };
}
