import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { NatsConnection, ConnectionOptions } from '@nats-io/transport-node';
import type * as NatsClient from '@nats-io/transport-node';
import { SpinError, messageOf } from '../core/errors.js';

/**
 * Where and how to reach NATS, as the `--nats*` flags give it. One of `creds`, `user`+`password`
 * or `token` authenticates; `tls` files turn TLS on (a CA alone verifies the server).
 */
export interface NatsOptions {
  url: string;
  /** The fleet's name: the second token of every subject (`spin.<fleet>.…`). */
  fleet: string;
  creds?: string;
  user?: string;
  password?: string;
  token?: string;
  tls?: { ca?: string; cert?: string; key?: string };
}

/** Names a fleet or node may have: one NATS subject token, as a package's `node` field. */
export const subjectTokenPattern = /^[a-z][a-z0-9_-]{0,31}$/;

/**
 * The subjects of a fleet. Everything is under `spin.<fleet>.`, so that a NATS account's
 * permissions can confine each party:
 *
 *   spin.<fleet>.api.<op>               the CLI's requests (health, packages.*, states.claim, nodes)
 *   spin.<fleet>.node.<node>.<op>       one node's agent protocol (lease, renew, ack, release,
 *                                        heartbeat): node A's credentials may publish only under
 *                                        `spin.<fleet>.node.a.>`, and the coordinator reads the
 *                                        node from the subject, never from the body
 *   spin.<fleet>.events                 broker events, published by the coordinator
 *   spin.<fleet>.runs.<run>             progress of an apply run for a CLI elsewhere
 *   _INBOX_<node>.>                     replies to a node (its inbox prefix, so that a node
 *                                        cannot read another's replies)
 */
export const subjects = {
  api: (fleet: string, op: string): string => `spin.${fleet}.api.${op}`,
  node: (fleet: string, node: string, op: string): string => `spin.${fleet}.node.${node}.${op}`,
  events: (fleet: string): string => `spin.${fleet}.events`,
  runs: (fleet: string, runId: string): string => `spin.${fleet}.runs.${runId}`,
  inboxPrefix: (node: string): string => `_INBOX_${node}`,
};

/** Checks a fleet or node name before it becomes a subject token. */
export function checkSubjectToken(what: string, name: string): string {
  if (!subjectTokenPattern.test(name)) {
    throw new SpinError(
      'usage',
      `${what} '${name}' must match ${subjectTokenPattern.source} (one NATS subject token)`,
    );
  }
  return name;
}

/**
 * Connects to NATS, retrying for ever after a lost connection (the agent and the coordinator
 * outlive a restart of nats-server). The client is imported here, on NATS paths only, so that a
 * local apply and `spin --version` do not load it. A server that cannot be reached at first is
 * `unreachable` (exit 4).
 */
export async function connectNats(
  options: NatsOptions,
  extra: { name: string; inboxPrefix?: string },
): Promise<NatsConnection> {
  checkSubjectToken('fleet', options.fleet);
  // Required from node_modules (a CommonJS package kept out of the bundle), not imported: the
  // bundle runs where a dynamic import() cannot.
  const { connect, credsAuthenticator } = createRequire(import.meta.url)(
    '@nats-io/transport-node',
  ) as typeof NatsClient;
  const connection: ConnectionOptions = {
    servers: options.url.split(','),
    name: extra.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    pingInterval: 5_000,
    maxPingOut: 2,
    timeout: 5_000,
  };
  if (extra.inboxPrefix !== undefined) connection.inboxPrefix = extra.inboxPrefix;
  if (options.creds !== undefined) {
    connection.authenticator = credsAuthenticator(readFileSync(options.creds));
  }
  if (options.user !== undefined) connection.user = options.user;
  if (options.password !== undefined) connection.pass = options.password;
  if (options.token !== undefined) connection.token = options.token;
  if (options.tls !== undefined) {
    const tls: NonNullable<ConnectionOptions['tls']> = {};
    if (options.tls.ca !== undefined) tls.caFile = options.tls.ca;
    if (options.tls.cert !== undefined) tls.certFile = options.tls.cert;
    if (options.tls.key !== undefined) tls.keyFile = options.tls.key;
    connection.tls = tls;
  }
  try {
    return await connect(connection);
  } catch (error) {
    throw new SpinError(
      'unreachable',
      `NATS at ${options.url} does not answer: ${messageOf(error)}`,
      {
        cause: error,
        retryable: true,
        suggestions: ['check --nats and the credentials; is nats-server running?'],
      },
    );
  }
}
