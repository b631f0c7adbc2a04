import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { SpinError, messageOf } from '../core/errors.js';
import { wireErrorOf } from './agent-session.js';
import { callApi, callNode } from './broker-protocol.js';
import type { ProtocolContext } from './broker-protocol.js';
import { connectNats, subjectTokenPattern, subjects } from './nats-connection.js';
import type { NatsOptions } from './nats-connection.js';

/**
 * Operations the daemon's process adds to the NATS API (`spin apply|status --nats`): each may
 * publish messages of a run on `spin.<fleet>.runs.<runId>` while it goes on.
 */
export type RemoteHandlers = Record<
  string,
  (body: unknown, publish: (runId: string, message: unknown) => void) => Promise<unknown>
>;

/**
 * The coordinator's side of NATS: answers the API on `spin.<fleet>.api.<op>` and each node's
 * agent protocol on `spin.<fleet>.node.<node>.<op>` through the same operations as the unix
 * socket (`broker-protocol.ts`), and publishes every broker event on `spin.<fleet>.events`.
 * Replies are the socket's JSON bodies; a failure is `{error: {code, message, details}}`.
 */
export class NatsResponder {
  readonly #connection: NatsConnection;
  readonly #subscriptions: Subscription[] = [];
  readonly #abort = new AbortController();
  readonly #unsubscribe: () => void;

  private constructor(
    connection: NatsConnection,
    context: ProtocolContext,
    fleet: string,
    remote: RemoteHandlers,
  ) {
    this.#connection = connection;
    const api = subjects.api(fleet, '');
    this.#subscriptions.push(
      connection.subscribe(`${api}>`, {
        callback: (error, msg) => {
          if (error !== null) return;
          const op = msg.subject.slice(api.length);
          const publish = (runId: string, message: unknown): void => {
            try {
              connection.publish(subjects.runs(fleet, runId), JSON.stringify(message));
            } catch {
              // Closed: the CLI hears nothing more and gives up after its timeout.
            }
          };
          const handler = Object.hasOwn(remote, op) ? remote[op] : undefined;
          this.#answer(
            msg,
            Promise.resolve().then(() =>
              handler === undefined
                ? callApi(context, op, bodyOf(msg))
                : handler(bodyOf(msg), publish),
            ),
          );
        },
      }),
      connection.subscribe(subjects.node(fleet, '*', '*'), {
        callback: (error, msg) => {
          if (error !== null) return;
          const [, , , node = '', op = ''] = msg.subject.split('.');
          this.#answer(
            msg,
            Promise.resolve().then(() => {
              if (!subjectTokenPattern.test(node)) {
                throw new SpinError('invalid_input', `'${node}' is not a node name`);
              }
              return callNode(context, node, op, bodyOf(msg), this.#abort.signal);
            }),
          );
        },
      }),
    );
    const events = subjects.events(fleet);
    this.#unsubscribe = context.broker.store.subscribe((event) => {
      try {
        connection.publish(events, JSON.stringify(event));
      } catch {
        // Closed or draining: followers over NATS notice the silence.
      }
    });
  }

  /** Connects and starts answering. */
  static async start(
    context: ProtocolContext,
    options: NatsOptions,
    remote: RemoteHandlers = {},
  ): Promise<NatsResponder> {
    const connection = await connectNats(options, {
      name: `spin-coordinator@${String(process.pid)}`,
    });
    const responder = new NatsResponder(connection, context, options.fleet, remote);
    await connection.flush();
    return responder;
  }

  /** Stops answering: waiting leases end, and the connection drains what it still sends. */
  async close(): Promise<void> {
    this.#abort.abort();
    this.#unsubscribe();
    try {
      await this.#connection.drain();
    } catch {
      await this.#connection.close().catch(() => undefined);
    }
  }

  #answer(msg: Msg, reply: Promise<unknown>): void {
    reply.then(
      (value) => {
        respond(msg, value);
      },
      (error: unknown) => {
        respond(msg, { error: wireErrorOf(error) });
      },
    );
  }
}

function respond(msg: Msg, value: unknown): void {
  if (msg.reply === undefined || msg.reply === '') return;
  try {
    msg.respond(JSON.stringify(value));
  } catch {
    // The connection closed meanwhile: the requester times out and asks again.
  }
}

function bodyOf(msg: Msg): unknown {
  if (msg.data.length === 0) return undefined;
  try {
    return msg.json<unknown>();
  } catch (error) {
    throw new SpinError('invalid_input', `the request body is not JSON: ${messageOf(error)}`);
  }
}
