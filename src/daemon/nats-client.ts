import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { SpinError, messageOf } from '../core/errors.js';
import type { WireError } from '../core/errors.js';
import { formatDuration } from '../core/duration.js';
import type { Broker, ConsumerOptions, QueueConsumer, SubscribeOptions } from '../broker/broker.js';
import type {
  AckResult,
  AttemptRef,
  BrokerEvent,
  BrokerListener,
  CommandInput,
  Lease,
  NewPackageOptions,
  PackageState,
  PackageStatus,
} from '../broker/broker-types.js';
import type { AckReply, PackageSummary } from '../broker/queue-store.js';
import type { DaemonHealth } from './daemon-server.js';
import { checkSubjectToken, connectNats, subjects } from './nats-connection.js';
import type { NatsOptions } from './nats-connection.js';
import { takeQueue } from './agent-succession.js';
import { OutboxFile } from './outbox-file.js';
import type { NodeStatus } from './node-registry.js';

/**
 * How long a request waits for the coordinator beyond any wait it asked for. A request sent
 * while the link is down may be lost; every request of the protocol is safe to send again (a
 * lease is reclaimed by its holder, an ack refused once settled), so a short bound only costs
 * a repeat.
 */
const answerMs = 3_000;

/**
 * The coordinator's broker, reached over NATS: the API on `spin.<fleet>.api.*`, events on
 * `spin.<fleet>.events`, and consumers that speak for one node on `spin.<fleet>.node.<node>.*`.
 * The node is the one this client was opened for (`node`), which the coordinator reads from the
 * subject: with the example NATS config, a node's credentials can publish on no other.
 */
export class NatsBroker implements Broker {
  readonly kind = 'daemon' as const;
  readonly connection: NatsConnection;
  readonly #fleet: string;
  readonly #node: string | undefined;
  readonly #outbox: string | undefined;
  readonly #holders: string | undefined;
  readonly #consumers = new Set<NatsConsumer>();
  readonly #subscriptions = new Set<Subscription>();

  private constructor(connection: NatsConnection, fleet: string, agent?: AgentSide) {
    this.connection = connection;
    this.#fleet = fleet;
    this.#node = agent?.node;
    this.#outbox = agent?.outbox;
    this.#holders = agent?.holders;
  }

  /**
   * Connects to the fleet. With `agent`, the client speaks for that node: its replies come to
   * the node's own inbox prefix, and its consumers keep unsent results under `agent.outbox`.
   */
  static async connect(options: NatsOptions, agent?: AgentSide): Promise<NatsBroker> {
    if (agent !== undefined) checkSubjectToken('node', agent.node);
    const connection = await connectNats(options, {
      name: agent === undefined ? `spin-cli@${String(process.pid)}` : `spin-agent@${agent.node}`,
      ...(agent === undefined ? {} : { inboxPrefix: subjects.inboxPrefix(agent.node) }),
    });
    return new NatsBroker(connection, options.fleet, agent);
  }

  health(): Promise<DaemonHealth> {
    return this.#api<DaemonHealth>('health');
  }
  async nodes(): Promise<NodeStatus[]> {
    return (await this.#api<{ nodes: NodeStatus[] }>('nodes')).nodes;
  }
  async createPackage(options: NewPackageOptions = {}): Promise<string> {
    return (await this.#api<{ packageId: string }>('packages.create', options)).packageId;
  }
  async addCommands(packageId: string, commands: readonly CommandInput[]): Promise<string[]> {
    return (await this.#api<{ commandIds: string[] }>('packages.commands', { packageId, commands }))
      .commandIds;
  }
  async enqueue(packageId: string): Promise<PackageState> {
    return (await this.#api<{ state: PackageState }>('packages.enqueue', { packageId })).state;
  }
  async cancel(packageId: string): Promise<PackageState> {
    return (await this.#api<{ state: PackageState }>('packages.cancel', { packageId })).state;
  }
  status(packageId: string): Promise<PackageStatus> {
    return this.#api<PackageStatus>('packages.status', { packageId });
  }
  async claimState(path: string, lineage: string, adopt: boolean): Promise<string | undefined> {
    const reply = await this.#api<{ known: string | null }>('states.claim', {
      path,
      lineage,
      adopt,
    });
    return reply.known ?? undefined;
  }
  async listPackages(limit = 100): Promise<PackageSummary[]> {
    return (await this.#api<{ packages: PackageSummary[] }>('packages.list', { limit })).packages;
  }

  /** Follows the coordinator's events; the subscription is live once the server confirmed it. */
  async subscribe(listener: BrokerListener, options: SubscribeOptions = {}): Promise<() => void> {
    const subscription = this.connection.subscribe(subjects.events(this.#fleet), {
      callback: (error, msg) => {
        if (error !== null) return;
        const event = msg.json<BrokerEvent>();
        if (options.packageId === undefined || event.packageId === options.packageId) {
          listener(event);
        }
      },
    });
    this.#subscriptions.add(subscription);
    await this.connection.flush();
    return () => {
      subscription.unsubscribe();
      this.#subscriptions.delete(subscription);
    };
  }

  consumer(options: ConsumerOptions): Promise<QueueConsumer> {
    if (this.#node === undefined || this.#outbox === undefined || this.#holders === undefined) {
      throw new SpinError('usage', 'Internal error: a NATS consumer needs the node it speaks for');
    }
    if (options.node !== this.#node) {
      throw new SpinError('usage', `this agent speaks for node ${this.#node}, not ${options.node}`);
    }
    const queue = `${options.node}.${options.resource}.json`;
    const taken = takeQueue(
      join(this.#holders, queue),
      options.holder ?? `pid ${String(process.pid)}`,
    );
    const consumer = new NatsConsumer({
      request: (op, body, waitMs) =>
        this.#request(subjects.node(this.#fleet, this.#node ?? '', op), body, waitMs),
      options: taken.succeeds === undefined ? options : { ...options, succeeds: taken.succeeds },
      outbox: new OutboxFile<Outbox>(join(this.#outbox, queue)),
      onClose: taken.leave,
    });
    this.#consumers.add(consumer);
    return Promise.resolve(consumer);
  }

  /** Commands this node's consumers hold now. */
  get running(): number {
    let held = 0;
    for (const consumer of this.#consumers) held += consumer.holding ? 1 : 0;
    return held;
  }

  /** Sends one heartbeat of the node this client speaks for. */
  async heartbeat(beat: unknown): Promise<void> {
    await this.#request(subjects.node(this.#fleet, this.#node ?? '', 'heartbeat'), beat, 0);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#consumers].map((c) => c.close()));
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    await this.connection.close().catch(() => undefined);
  }

  /** Calls an operation of the coordinator's API by name (`runs.apply`, `runs.status`, …). */
  call<T>(op: string, body?: unknown): Promise<T> {
    return this.#api<T>(op, body);
  }

  /**
   * Hears every message of a run (`spin.<fleet>.runs.<runId>`), in the order it was published;
   * live once the server confirmed it. Returns the function that stops it.
   */
  async followRun(runId: string, onMessage: (message: unknown) => void): Promise<() => void> {
    const subscription = this.connection.subscribe(subjects.runs(this.#fleet, runId), {
      callback: (error, msg) => {
        if (error === null) onMessage(msg.json<unknown>());
      },
    });
    this.#subscriptions.add(subscription);
    await this.connection.flush();
    return () => {
      subscription.unsubscribe();
      this.#subscriptions.delete(subscription);
    };
  }

  #api<T>(op: string, body?: unknown): Promise<T> {
    return this.#request<T>(subjects.api(this.#fleet, op), body, 0);
  }

  async #request<T>(subject: string, body: unknown, waitMs: number): Promise<T> {
    let text: string;
    try {
      const msg = await this.connection.request(
        subject,
        body === undefined ? '' : JSON.stringify(body),
        { timeout: waitMs + answerMs },
      );
      text = msg.string();
    } catch (error) {
      throw natsFailure(subject, error);
    }
    const reply = JSON.parse(text) as unknown;
    const error = (reply as { error?: WireError } | null)?.error;
    if (error !== undefined) throw SpinError.fromWire(error);
    return reply as T;
  }
}

/** Who an agent's client speaks for, and where its consumers keep what outlives a crash. */
export interface AgentSide {
  node: string;
  outbox: string;
  /** Where it records which process serves each queue (see agent-succession.ts). */
  holders: string;
}

type NodeRequest = (op: string, body: unknown, waitMs: number) => Promise<Record<string, unknown>>;

/**
 * One queue of this node over NATS. A result is written to the outbox file before it is sent,
 * and sent again until the coordinator answers; only then does the consumer lease again. So a
 * result finished while the coordinator or NATS is unreachable (or before the agent was killed)
 * is delivered when they answer again, and the coordinator accepts it only if its attempt still
 * holds the lease. A lease request that fails (the link is down) answers "nothing" after a
 * pause, so the agent's loop simply asks again.
 */
class NatsConsumer implements QueueConsumer {
  readonly #request: NodeRequest;
  readonly #options: ConsumerOptions;
  readonly #outbox: OutboxFile<Outbox>;
  readonly #onClose: () => void;
  readonly #closed = new AbortController();
  #delivering: Promise<void> = Promise.resolve();
  /** Whether a lease is held (leased, not yet acked or released). */
  holding = false;
  /** The lease that came with the answer to the last ack, for the next `lease`. */
  #next: Lease | undefined;

  constructor(init: {
    request: NodeRequest;
    options: ConsumerOptions;
    outbox: OutboxFile<Outbox>;
    onClose: () => void;
  }) {
    this.#request = init.request;
    this.#options = init.options;
    this.#outbox = init.outbox;
    this.#onClose = init.onClose;
    const saved = this.#outbox.read();
    if (saved !== undefined) {
      this.#delivering = this.#deliver(saved).then(
        () => undefined,
        () => undefined,
      );
    }
  }

  async lease(options: { waitMs?: number; signal?: AbortSignal } = {}): Promise<Lease | undefined> {
    await this.#delivering;
    if (this.#closed.signal.aborted) return undefined;
    const next = this.#next;
    this.#next = undefined;
    if (next !== undefined) {
      this.holding = true;
      return next;
    }
    const waitMs = Math.min(options.waitMs ?? 0, 5_000);
    try {
      const reply = await this.#request('lease', this.#body({ waitMs }), waitMs);
      const lease = (reply['lease'] as Lease | null) ?? undefined;
      if (lease !== undefined && options.signal?.aborted === true) {
        await this.release(lease).catch(() => undefined);
        return undefined;
      }
      this.holding = lease !== undefined;
      return lease;
    } catch (error) {
      if (!(error instanceof SpinError && error.code === 'unreachable')) throw error;
      await pause(500, this.#closed.signal);
      return undefined;
    }
  }

  async renew(ref: AttemptRef): Promise<number> {
    return (await this.#request('renew', this.#body({ ref: refOf(ref) }), 0))[
      'leaseExpiresAt'
    ] as number;
  }

  ack(ref: AttemptRef, result: AckResult): Promise<AckReply> {
    this.holding = false;
    const outbox: Outbox = { ref: refOf(ref), result };
    this.#outbox.keep(outbox);
    const delivery = this.#deliver(outbox);
    this.#delivering = delivery.then(
      () => undefined,
      () => undefined,
    );
    return delivery;
  }

  async release(ref: AttemptRef): Promise<void> {
    this.holding = false;
    await this.#request('release', { ref: refOf(ref) }, 0);
  }

  async close(): Promise<void> {
    this.#closed.abort();
    const next = this.#next;
    this.#next = undefined;
    if (next !== undefined) await this.release(next).catch(() => undefined);
    // A delivery under way ends at its answer or timeout (what is unanswered stays on disk).
    await this.#delivering;
    this.#outbox.close();
    this.#onClose();
  }

  /** Sends a result until the coordinator answers it (accepted or refused); then forgets it. */
  async #deliver(outbox: Outbox): Promise<AckReply> {
    for (let delay = 250; ; delay = Math.min(delay * 2, 2_000)) {
      try {
        // The next lease comes with the answer: one round trip a command, and still nothing
        // leased before the result was delivered.
        const reply = await this.#request('ack', this.#body({ ...outbox, next: true }), 0);
        this.#outbox.clear();
        this.#next = (reply['next'] as Lease | undefined) ?? undefined;
        return { outcome: reply['outcome'] as AckReply['outcome'] };
      } catch (error) {
        if (!(error instanceof SpinError && error.code === 'unreachable')) {
          this.#outbox.clear();
          throw error;
        }
        if (this.#closed.signal.aborted) throw error; // kept on disk for the next start
        await pause(delay, this.#closed.signal);
      }
    }
  }

  #body(body: Record<string, unknown>): Record<string, unknown> {
    const { resource, leaseMs, holder, succeeds } = this.#options;
    return {
      resource,
      ...(leaseMs === undefined ? {} : { leaseMs }),
      ...(holder === undefined ? {} : { holder }),
      ...(succeeds === undefined ? {} : { succeeds }),
      ...body,
    };
  }
}

/** A result on its way to the coordinator. */
interface Outbox {
  ref: AttemptRef;
  result: AckResult;
}

function refOf(ref: AttemptRef): AttemptRef {
  return { packageId: ref.packageId, commandId: ref.commandId, attemptId: ref.attemptId };
}

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

function natsFailure(subject: string, error: unknown): SpinError {
  const name = error instanceof Error ? error.name : '';
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause.name : '';
  if (name === 'PermissionViolationError' || cause === 'PermissionViolationError') {
    // NATS itself refused the subject: these credentials may not speak for that node.
    return new SpinError('wrong_node', `NATS refused ${subject}: permission denied`, {
      cause: error,
    });
  }
  const why =
    name === 'TimeoutError' || cause === 'TimeoutError'
      ? `no answer within ${formatDuration(answerMs)}`
      : name === 'NoResponders' || cause === 'NoResponders' // the client's NoRespondersError
        ? 'no coordinator answers on NATS (is `spin daemon` running with --nats and the same --fleet?)'
        : messageOf(error);
  return new SpinError('unreachable', `${subject}: ${why}`, { cause: error, retryable: true });
}
