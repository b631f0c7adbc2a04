import type { Agent, AgentRoots } from '../agents/agent.js';
import type { AckResult, Lease } from '../broker/broker-types.js';
import { SpinError, messageOf } from '../core/errors.js';

/** How long an action's output tail may be when it travels in an ack. */
export const maxOutputChars = 16 * 1024;

/** The output of a successful action, as it travels in an ack and lands in the state file. */
export interface ActionOutput {
  text: string;
  observed?: Record<string, unknown>;
}

/**
 * Runs the action a lease names and turns whatever happens into an ack: success with the output,
 * or failure with a stable error code and whether a retry may help. Never throws. The action is
 * aborted when `signal` fires (cancel, shutdown) or when the lease's deadline passes (timeout).
 */
export async function runAction(options: {
  agent: Agent;
  lease: Lease;
  roots: AgentRoots;
  signal: AbortSignal;
  now?: () => number;
  progress?: (line: string) => void;
}): Promise<AckResult> {
  const { agent, lease } = options;
  const action = agent.actions.get(lease.spec.action);
  if (action === undefined) {
    const error = new SpinError(
      'invalid_input',
      `agent ${agent.resource} has no action ${lease.spec.action}`,
    );
    return { ok: false, error: error.toWire(), retryable: false };
  }
  const now = options.now ?? Date.now;
  const timeout = new AbortController();
  const timer = setTimeout(
    () => {
      timeout.abort(
        new SpinError('timeout', `timed out after ${String(lease.spec.timeoutMs)} ms`, {
          retryable: true,
        }),
      );
    },
    Math.max(0, lease.deadlineAt - now()),
  );
  const signal = AbortSignal.any([options.signal, timeout.signal]);
  try {
    const result = await action.run(lease.spec.params, {
      signal,
      roots: options.roots,
      progress: options.progress ?? (() => undefined),
    });
    const output: ActionOutput = { text: tail(result.output) };
    if (result.observed !== undefined) output.observed = { ...result.observed };
    return { ok: true, output };
  } catch (error) {
    const reason: unknown = signal.aborted ? signal.reason : error;
    const spin =
      reason instanceof SpinError
        ? reason
        : error instanceof SpinError
          ? error
          : new SpinError('action_failed', messageOf(error), { retryable: true });
    return { ok: false, error: spin.toWire(), retryable: spin.retryable };
  } finally {
    clearTimeout(timer);
  }
}

/** The last `maxOutputChars` characters of an output, marked when cut. */
export function tail(text: string): string {
  return text.length <= maxOutputChars ? text : `…${text.slice(text.length - maxOutputChars)}`;
}
