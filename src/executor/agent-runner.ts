import { defaults } from '../core/defaults.js';
import type { Agent, AgentRoots } from '../agents/agent.js';
import { SpinError } from '../core/errors.js';
import type { Broker, QueueConsumer } from '../broker/broker.js';
import type { AckResult, Lease } from '../broker/broker-types.js';
import { linkedAbort } from './linked-abort.js';
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
 * the action with its timeout while renewing the lease, ack the result and ask for the next lease
 * at once. Both go to the broker together: the lease comes back as soon as it is written, while
 * the ack waits for its flush to disk, so the next action starts while the last result is made
 * durable (the broker holds back a command that needs the one just acked until then). At most
 * `maxUnflushedAcks` acks are outstanding: after a crash of the machine, at most that many
 * finished commands run again. An ack refused as stale or cancelled (the broker gave the command to
 * someone else, or the package was cancelled) drops that command and goes on. On stop, a lease
 * still held is released so the command is ready again at once. The agent's background work
 * (`Agent.serve`: the emulation agent's supervision) lasts as long as the runner.
 */
export async function runAgent(options: AgentRunnerOptions): Promise<void> {
  const { broker, agent, signal } = options;
  const leaseMs = options.leaseMs ?? defaults.leaseMs;
  agent.prepare?.(options.roots);
  const consumer = await broker.consumer({
    node: options.node ?? defaults.command.node,
    resource: agent.resource,
    leaseMs,
    holder: options.holder ?? `${agent.resource}-agent@${String(process.pid)}`,
  });
  let lease: Lease | undefined;
  const acks = new AckWindow(maxUnflushedAcks);
  const endService = agent.serve?.(options.roots);
  try {
    while (!signal.aborted) {
      lease ??= await untilAborted(consumer.lease({ waitMs: 10_000, signal }), signal).catch(
        ignoreAbort(signal),
      );
      if (lease === undefined) continue;
      const result = await runLeased(consumer, lease, options, leaseMs);
      if (stopped(signal)) break;
      await acks.add(settle(consumer, lease, result));
      lease = undefined;
    }
    await acks.drain();
  } finally {
    await acks.drain().catch(() => undefined);
    if (lease !== undefined) await consumer.release(lease).catch(() => undefined);
    await consumer.close();
    await endService?.();
  }
}

async function runLeased(
  consumer: QueueConsumer,
  lease: Lease,
  options: AgentRunnerOptions,
  leaseMs: number,
): Promise<AckResult> {
  const { controller: fenced, dispose } = linkedAbort(options.signal);
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
      signal: fenced.signal,
    });
  } finally {
    clearInterval(renewal);
    dispose();
  }
}

/** How many acks an agent may have waiting for their flush while it goes on. */
export const maxUnflushedAcks = 32;

/** Acks in flight, at most `size`: adding one waits for the oldest once full; failures surface. */
class AckWindow {
  readonly #size: number;
  readonly #pending: Promise<void>[] = [];

  constructor(size: number) {
    this.#size = size;
  }

  async add(ack: Promise<void>): Promise<void> {
    ack.catch(() => undefined); // Observed when awaited below; never an unhandled rejection.
    this.#pending.push(ack);
    if (this.#pending.length > this.#size) await this.#pending.shift();
  }

  async drain(): Promise<void> {
    while (this.#pending.length > 0) await this.#pending.shift();
  }
}

/** Acks a result; a refusal as stale or cancelled drops the command, anything else throws. */
async function settle(consumer: QueueConsumer, lease: Lease, result: AckResult): Promise<void> {
  try {
    await consumer.ack(lease, result);
  } catch (error) {
    if (
      error instanceof SpinError &&
      (error.code === 'stale_attempt' || error.code === 'cancelled')
    )
      return;
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
