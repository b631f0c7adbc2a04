import { SpinError, unreachable } from '../core/errors.js';
import type { QueueConsumer } from '../broker/broker.js';
import type { Lease } from '../broker/broker-types.js';
import type { LocalBroker } from '../broker/local-broker.js';
import type { NodeRecord, NodeRegistry } from './node-registry.js';
import {
  parseAgentRequest,
  parseCommandInputs,
  parseHeartbeat,
  parseNewPackage,
  parseStateClaim,
} from './wire-validation.js';
import type { AgentRequest } from './wire-validation.js';

/** What the protocol's operations run against: the coordinator's broker and its nodes. */
export interface ProtocolContext {
  broker: LocalBroker;
  nodes: NodeRegistry;
  /** The answer to `health` (the transport that serves it knows its own listeners). */
  health(): unknown;
}

type ApiHandler = (context: ProtocolContext, body: Record<string, unknown>) => Promise<unknown>;

/**
 * The broker's API, once for every transport: the daemon's HTTP routes and its NATS subjects
 * (`spin.<fleet>.api.<op>`) both call these, with the same bodies and the same answers, so the
 * broker's rules and the checks of what arrives are written once. Each handler validates its
 * body before anything reaches the store.
 */
export const apiOps = {
  health: (context) => Promise.resolve(context.health()),
  'packages.list': async (context, body) => {
    const limit = Number(body['limit'] ?? 100);
    return {
      packages: await context.broker.listPackages(Number.isInteger(limit) ? limit : 100),
    };
  },
  'packages.create': async (context, body) => ({
    packageId: await context.broker.createPackage(parseNewPackage(body)),
  }),
  'packages.status': (context, body) => context.broker.status(packageIdOf(body)),
  'packages.commands': async (context, body) => ({
    commandIds: await context.broker.addCommands(
      packageIdOf(body),
      parseCommandInputs({ commands: body['commands'] }),
    ),
  }),
  'packages.enqueue': async (context, body) => ({
    state: await context.broker.enqueue(packageIdOf(body)),
  }),
  'packages.cancel': async (context, body) => ({
    state: await context.broker.cancel(packageIdOf(body)),
  }),
  'states.claim': async (context, body) => {
    const claim = parseStateClaim(body);
    return {
      known: (await context.broker.claimState(claim.path, claim.lineage, claim.adopt)) ?? null,
    };
  },
  nodes: (context) => Promise.resolve({ nodes: context.nodes.list() }),
} satisfies Record<string, ApiHandler>;

/** The name of an API operation. */
export type ApiOp = keyof typeof apiOps;

/** Runs one API operation; an unknown one is `not_found`. */
export function callApi(context: ProtocolContext, op: string, body: unknown): Promise<unknown> {
  if (!Object.hasOwn(apiOps, op)) throw new SpinError('not_found', `no operation ${op}`);
  return apiOps[op as ApiOp](context, objectOf(body));
}

/**
 * Runs one request of the agent protocol on a consumer of the requesting node's queue: what a
 * socket connection and a NATS request share. Every attempt the request names is checked
 * against `node` (the store refuses a command of another node: `wrong_node`); `hold` hears of
 * each lease handed out, so that a connection can give back what it holds when it closes.
 */
export async function runAgentRequest(
  consumer: QueueConsumer,
  request: AgentRequest,
  options: {
    node: string;
    signal?: AbortSignal;
    hold?: (lease: Lease | undefined) => Lease | undefined;
  },
): Promise<Record<string, unknown>> {
  const hold = options.hold ?? ((lease: Lease | undefined) => lease);
  switch (request.op) {
    case 'lease': {
      const lease = await consumer.lease({
        waitMs: request.waitMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { lease: hold(lease) ?? null };
    }
    case 'renew':
      return { leaseExpiresAt: await consumer.renew({ ...request.ref, node: options.node }) };
    case 'release':
      await consumer.release({ ...request.ref, node: options.node });
      return {};
    case 'ack': {
      const reply = await consumer.ack({ ...request.ref, node: options.node }, request.result, {
        next: request.next,
      });
      const next = hold(reply.next);
      return next === undefined ? { outcome: reply.outcome } : { outcome: reply.outcome, next };
    }
    default:
      return unreachable(request);
  }
}

/** The operations of a node's subjects (`spin.<fleet>.node.<node>.<op>`). */
export const nodeOps = ['lease', 'renew', 'ack', 'release', 'heartbeat'] as const;

/**
 * Runs one request of a node that has no connection of its own (NATS): its queue is named in
 * the request, its node by the transport (the subject), never by the body. A heartbeat updates
 * the node's record.
 */
export async function callNode(
  context: ProtocolContext,
  node: string,
  op: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  if (op === 'heartbeat') {
    const record: NodeRecord = context.nodes.heartbeat(node, parseHeartbeat(body));
    return { state: record.state };
  }
  if (!(nodeOps as readonly string[]).includes(op)) {
    throw new SpinError('not_found', `no node operation ${op}`);
  }
  const request = parseAgentRequest({ ...objectOf(body), id: 0, op });
  const resource = request.resource ?? resourceOfRef(request);
  const consumer = await context.broker.consumer({
    node,
    resource,
    ...(request.leaseMs === undefined ? {} : { leaseMs: request.leaseMs }),
    holder: request.holder ?? `${resource}-agent@${node}`,
    reclaim: request.holder !== undefined,
    ...(request.succeeds === undefined ? {} : { succeeds: request.succeeds }),
  });
  // A lease granted to a node gone silent meanwhile (a long-poll of an agent killed while it
  // waited) would be held by nobody until it ran out: give it straight back.
  const hold = (lease: Lease | undefined): Lease | undefined => {
    if (lease === undefined || context.nodes.get(node)?.state !== 'offline') return lease;
    consumer.release({ ...lease, node }).catch(() => undefined);
    return undefined;
  };
  return runAgentRequest(consumer, request, { node, hold, ...(signal ? { signal } : {}) });
}

function resourceOfRef(request: AgentRequest): string {
  if (request.op === 'lease' || (request.op === 'ack' && request.next)) {
    throw new SpinError('invalid_input', `request.resource is required for ${request.op}`);
  }
  // Renew and release act on the attempt alone: the queue is not read.
  return '-';
}

function packageIdOf(body: Record<string, unknown>): string {
  const id = body['packageId'];
  if (typeof id !== 'string' || id === '') {
    throw new SpinError('invalid_input', 'body.packageId must be a non-empty string');
  }
  return id;
}

/** A request body as an object (none is `{}`); anything else is `invalid_input`. */
export function objectOf(body: unknown): Record<string, unknown> {
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new SpinError('invalid_input', 'body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
