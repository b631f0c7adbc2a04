import { mkdir } from 'node:fs/promises';
import { SpinError } from '../../core/errors.js';
import type { ActionContext, Agent, AgentAction } from '../agent.js';
import { abortedError, throwIfAborted } from '../abort.js';
import { confinePath, confineRoot } from '../confined-path.js';
import type { Params } from '../params.js';
import { defaultKillAfterMs } from '../process-group.js';
import { runProgram } from '../run-program.js';
import { OutputTail } from './output-tail.js';
import { builtinSpec } from '../registry.js';

/** How the shell agent is allowed to run. */
export interface ShellAgentOptions {
  /** Shell commands run only when the daemon or embedded broker allows them explicitly. */
  allowShell: boolean;
  /** Bytes of combined stdout/stderr kept (the tail); 64 KiB unless set. */
  tailBytes?: number;
  /** After the signal aborts: SIGTERM to the group, then SIGKILL after this many ms (2000). */
  killAfterMs?: number;
}

function argvOf(params: Params): string[] {
  const argv = params['argv'];
  if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
    throw new SpinError('invalid_input', "Parameter 'argv' must be a non-empty list of strings.");
  }
  return argv;
}

function envOf(params: Params): Record<string, string> {
  const env = params['env'];
  if (env === undefined) return {};
  if (typeof env !== 'object' || env === null || Array.isArray(env)) {
    throw new SpinError('invalid_input', "Parameter 'env' must be an object of strings.");
  }
  const entries = Object.entries(env as Record<string, unknown>);
  if (!entries.every(([, v]) => typeof v === 'string')) {
    throw new SpinError('invalid_input', "Parameter 'env' must be an object of strings.");
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** The working directory: `$SPIN_HOME/work[/cwd]`, confined and created when missing. */
async function workDir(params: Params, ctx: ActionContext): Promise<string> {
  const cwd = params['cwd'];
  if (cwd === undefined) return confineRoot(ctx.roots.work);
  if (typeof cwd !== 'string')
    throw new SpinError('invalid_input', "Parameter 'cwd' must be a string.");
  let dir = await confinePath(ctx.roots.work, cwd, 'relative');
  if (dir.kind === 'missing') {
    await mkdir(dir.path, { recursive: true });
    dir = await confinePath(ctx.roots.work, cwd, 'relative'); // check again what mkdir walked through
  }
  if (dir.kind !== 'directory') {
    throw new SpinError('invalid_input', `The working directory '${cwd}' is not a directory.`);
  }
  return dir.path;
}

/**
 * The shell agent: `run` executes an argv with execa, never through a shell, in a confined
 * directory under `$SPIN_HOME/work`, in a process group of its own (see run-program.ts). The
 * command's AbortSignal is its deadline: the whole group is terminated, then killed, and the action
 * returns without waiting for pipes a stray process holds open. Processes the program leaves
 * running in its group when it exits are ended too: nothing of a command outlives it. Under a
 * lease, the group is recorded so that a redelivered attempt ends it first. Only the tail of the
 * output is kept. A shell command is as idempotent as the program it runs: spin cannot make it
 * more so.
 */
export function shellAgent(options: ShellAgentOptions): Agent {
  const tailBytes = options.tailBytes ?? 64 * 1024;
  const spec = builtinSpec('shell', 'run');
  const run: AgentAction = {
    spec,
    async run(params, ctx) {
      if (!options.allowShell) {
        throw new SpinError('shell_disabled', 'Shell commands are not allowed on this broker.', {
          suggestions: ['Start the daemon with --allow-shell to run shell commands.'],
        });
      }
      const argv = argvOf(params);
      const [file, ...args] = argv as [string, ...string[]];
      const cwd = await workDir(params, ctx);
      throwIfAborted(ctx.signal, `'${file}'`);
      const tail = new OutputTail(tailBytes);
      const end = await runProgram(file, args, {
        cwd,
        env: envOf(params),
        signal: ctx.signal,
        killAfterMs: options.killAfterMs ?? defaultKillAfterMs,
        ...(ctx.attempt === undefined
          ? {}
          : { tracking: { home: ctx.roots.home, attempt: ctx.attempt } }),
        onOutput: (chunk, stream) => {
          tail.push(chunk);
          ctx.output?.(chunk, stream);
        },
      });
      const output = tail.text();
      if (end.kind === 'aborted') throw abortedError(ctx.signal, `'${file}'`, { output });
      if (end.kind === 'not_started') {
        if (end.errno === 'ENOENT') {
          throw new SpinError('not_found', `Program '${file}' was not found.`, {
            details: { argv0: file },
          });
        }
        throw new SpinError('action_failed', `'${file}' did not start: ${end.message}`, {
          retryable: true,
          details: { errno: end.errno ?? null },
        });
      }
      if (end.exitCode !== 0) {
        const how =
          end.exitCode !== null
            ? `exited with code ${String(end.exitCode)}`
            : `was killed by ${end.signal ?? 'a signal'}`;
        throw new SpinError('action_failed', `'${file}' ${how}.`, {
          retryable: true,
          details: { exitCode: end.exitCode, signal: end.signal, output },
        });
      }
      return { output };
    },
  };
  return { resource: 'shell', actions: new Map([['run', run]]) };
}
