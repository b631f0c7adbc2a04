import type { Agent, AgentRoots } from '../agents/agent.js';
import type { AckResult, Lease } from '../broker/broker-types.js';
import { endEarlierAttempts } from '../agents/attempt-record.js';
import { throwIfAborted } from '../agents/abort.js';
import { formatDuration } from '../core/duration.js';
import { linkedAbort } from './linked-abort.js';
import { SpinError, messageOf } from '../core/errors.js';
import { AttemptLog } from './attempt-log.js';

/** How long an action's output tail may be when it travels in an ack. */
export const maxOutputChars = 16 * 1024;

/** The output of a successful action, as it travels in an ack and lands in the state file. */
export interface ActionOutput {
  text: string;
  observed?: Record<string, unknown>;
}

/**
 * Runs the action a lease names and turns whatever happens into an ack: success with the output,
 * or failure with a stable error code and whether a retry may help. Never throws. The action's
 * deadline is the command's own `timeoutMs`, counted from when this attempt starts (never later
 * than the lease's `deadlineAt`, whose grace only covers an agent that is lost): then the action
 * is aborted and fails with `timeout`. It is also aborted when `signal` fires (cancel, shutdown,
 * lease lost). Before a second or later attempt runs, whatever an earlier attempt of the same
 * command left running on this node is ended (see attempt-record.ts), so one command never runs
 * twice at once. What the attempt says — its agent's progress, its programs' stdout and stderr,
 * how it ended — is kept in its log under `$SPIN_HOME/logs` (attempt-log.ts).
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
  const started = now();
  const deadline = Math.min(started + lease.spec.timeoutMs, lease.deadlineAt);
  const { controller: timeout, dispose } = linkedAbort(options.signal);
  const timer = setTimeout(
    () => {
      timeout.abort(
        new SpinError(
          'timeout',
          `the command's timeout of ${formatDuration(lease.spec.timeoutMs)} passed`,
          { retryable: true },
        ),
      );
    },
    Math.max(0, deadline - started),
  );
  const signal = timeout.signal;
  const { packageId, commandId, attemptId } = lease;
  const log = await AttemptLog.open(
    options.roots.home,
    {
      packageName: lease.packageName ?? packageId,
      commandId,
      action: `${lease.spec.resource}.${lease.spec.action}`,
    },
    { now },
  );
  let ended = 'ended';
  let failed = true;
  try {
    // A first attempt has no earlier one: the scan of the machine's processes is for retries
    // and for deliveries after an agent was lost.
    if (lease.attempt > 1) await endEarlierAttempts(options.roots.home, { packageId, commandId });
    throwIfAborted(signal, `${lease.spec.resource} ${lease.spec.action}`);
    const result = await action.run(lease.spec.params, {
      signal,
      roots: options.roots,
      progress: (line) => {
        log.message(line);
        options.progress?.(line);
      },
      output: (chunk, stream) => {
        log.output(chunk, stream);
      },
      attempt: { packageId, commandId, attemptId },
    });
    const output: ActionOutput = { text: tail(result.output) };
    if (result.observed !== undefined) output.observed = { ...result.observed };
    const said = log.streamed ? '' : firstLine(result.output);
    ended = `succeeded in ${formatDuration(now() - started)}${said === '' ? '' : `: ${said}`}`;
    failed = false;
    return { ok: true, output };
  } catch (error) {
    const spin = failureOf(error, signal);
    ended = `failed in ${formatDuration(now() - started)}: ${spin.message} [${spin.code}]`;
    return { ok: false, error: spin.toWire(), retryable: spin.retryable };
  } finally {
    clearTimeout(timer);
    dispose();
    log.close(ended, failed);
  }
}

/**
 * The SpinError an attempt fails with. Once the signal fired, the abort is the cause: the
 * action's own error when it reports that same cause (with its details, such as the output so
 * far), else the signal's reason.
 */
function failureOf(error: unknown, signal: AbortSignal): SpinError {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (reason instanceof SpinError && !(error instanceof SpinError && error.code === reason.code))
    return reason;
  if (error instanceof SpinError) return error;
  return new SpinError('action_failed', messageOf(error), { retryable: true });
}

/** The last `maxOutputChars` characters of an output, marked when cut. */
export function tail(text: string): string {
  return text.length <= maxOutputChars ? text : `…${text.slice(text.length - maxOutputChars)}`;
}

function firstLine(text: string): string {
  return text.split('\n', 1)[0] ?? '';
}
