import type { Agent, AgentRoots } from '../agents/agent.js';
import { SpinError } from '../core/errors.js';
import type { Broker, QueueConsumer } from '../daemon/broker.js';
import type { AckResult, Lease } from '../daemon/broker-types.js';
import { runAction } from './run-action.js';

/** Options of an agent runner: which broker and queue, which agent, and when to stop. */
export interface AgentRunnerOptions {
  broker: Broker;
  agent: Agent;
  roots: AgentRoots;
  node?: string;
  /** Lease length; renewed at a third of it while an action runs. */
  leaseMs?: number;
  holder?: string;
  /** Stops the runner: the running action is aborted and its lease given back. */
  signal: AbortSignal;
}

/**
 * Consumes one (node, resource) queue, one command at a time, until `signal` fires: lease, run
 * the action with its timeout while renewing the lease, ack the result and take the next lease
 * in the same round trip. An ack refused as stale or cancelled (the broker gave the command to
 * someone else, or the package was cancelled) drops that command and goes on. On stop, a lease
 * still held is released so the command is ready again at once.
 */
export async function runAgent(options: AgentRunnerOptions): Promise<void> {
  const { broker, agent, signal } = options;
  const leaseMs = options.leaseMs ?? 30_000;
  const consumer = await broker.consumer({
    node: options.node ?? 'local',
    resource: agent.resource,
    leaseMs,
    holder: options.holder ?? `${agent.resource}-agent@${String(process.pid)}`,
  });
  let lease: Lease | undefined;
  try {
    while (!signal.aborted) {
      lease ??= await untilAborted(consumer.lease({ waitMs: 10_000, signal }), signal).catch(
        ignoreAbort(signal),
      );
      if (lease === undefined) continue;
      const result = await runLeased(consumer, lease, options, leaseMs);
      if (stopped(signal)) break;
      lease = await ackAndNext(consumer, lease, result);
    }
  } finally {
    if (lease !== undefined) await consumer.release(lease).catch(() => undefined);
    await consumer.close();
  }
}

async function runLeased(
  consumer: QueueConsumer,
  lease: Lease,
  options: AgentRunnerOptions,
  leaseMs: number,
): Promise<AckResult> {
  const fenced = new AbortController();
  const renewal = setInterval(
    () => {
      consumer.renew(lease).catch((error: unknown) => {
        if (
          error instanceof SpinError &&
          (error.code === 'stale_attempt' || error.code === 'cancelled')
        ) {
          fenced.abort(new SpinError('cancelled', `lease lost: ${error.message}`));
        }
      });
    },
    Math.max(50, Math.floor(leaseMs / 3)),
  );
  try {
    return await runAction({
      agent: options.agent,
      lease,
      roots: options.roots,
      signal: AbortSignal.any([options.signal, fenced.signal]),
    });
  } finally {
    clearInterval(renewal);
  }
}

async function ackAndNext(
  consumer: QueueConsumer,
  lease: Lease,
  result: AckResult,
): Promise<Lease | undefined> {
  try {
    return (await consumer.ack(lease, result, { next: true })).next;
  } catch (error) {
    if (
      error instanceof SpinError &&
      (error.code === 'stale_attempt' || error.code === 'cancelled')
    )
      return undefined;
    throw error;
  }
}

/**
 * The promise's value, or undefined as soon as `signal` fires: a long-poll for a lease over the
 * daemon's socket cannot be recalled, and a lease it brings after that is given back when the
 * consumer closes.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Whether the runner was told to stop (read through a call: it changes while we await). */
function stopped(signal: AbortSignal): boolean {
  return signal.aborted;
}

function ignoreAbort(signal: AbortSignal): (error: unknown) => undefined {
  return (error: unknown) => {
    if (signal.aborted) return undefined;
    throw error;
  };
}

/**
 * Runs every agent of `agents` on its queue until `signal` fires; resolves when all stopped.
 * What the embedded broker and the daemon use to carry out commands in-process.
 */
export async function runAgents(
  options: Omit<AgentRunnerOptions, 'agent'> & { agents: Iterable<Agent> },
): Promise<void> {
  const { agents, ...rest } = options;
  await Promise.all([...agents].map((agent) => runAgent({ ...rest, agent })));
}
