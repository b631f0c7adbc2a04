import { mkdir } from 'node:fs/promises';
import { loadExeca } from '../load-execa.js';
import { SpinError } from '../../core/errors.js';
import type { ActionContext, Agent, AgentAction } from '../agent.js';
import { abortedError, throwIfAborted } from '../abort.js';
import { confinePath } from '../confined-path.js';
import type { Params } from '../params.js';
import { OutputTail } from './output-tail.js';
import { builtinSpec } from '../registry.js';

/** How the shell agent is allowed to run. */
export interface ShellAgentOptions {
  /** Shell commands run only when the daemon or embedded broker allows them explicitly. */
  allowShell: boolean;
  /** Bytes of combined stdout/stderr kept (the tail); 64 KiB unless set. */
  tailBytes?: number;
  /** After the signal aborts: SIGTERM, then SIGKILL after this many ms (default 2000). */
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
  if (cwd === undefined) {
    await mkdir(ctx.roots.work, { recursive: true });
    return ctx.roots.work;
  }
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
 * directory under `$SPIN_HOME/work`, with the command's AbortSignal as its deadline (the child is
 * terminated, then killed). Only the tail of its output is kept. A shell command is as idempotent
 * as the program it runs: spin cannot make it more so.
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
      const child = (await loadExeca())(file, args, {
        cwd,
        env: envOf(params),
        stdin: 'ignore',
        all: true,
        buffer: false,
        reject: false,
        cancelSignal: ctx.signal,
        forceKillAfterDelay: options.killAfterMs ?? 2000,
      });
      child.all.on('data', (chunk: Buffer) => {
        tail.push(chunk);
      });
      const result = await child;
      const output = tail.text();
      if (result.isCanceled || ctx.signal.aborted)
        throw abortedError(ctx.signal, `'${file}'`, { output });
      if (result.failed) {
        const errno =
          result.cause instanceof Error && 'code' in result.cause ? result.cause.code : undefined;
        if (errno === 'ENOENT') {
          throw new SpinError('not_found', `Program '${file}' was not found.`, {
            details: { argv0: file },
          });
        }
        const how =
          result.exitCode !== undefined
            ? `exited with code ${String(result.exitCode)}`
            : `was killed by ${result.signal ?? 'a signal'}`;
        throw new SpinError('action_failed', `'${file}' ${how}.`, {
          retryable: true,
          details: { exitCode: result.exitCode ?? null, signal: result.signal ?? null, output },
        });
      }
      return { output };
    },
  };
  return { resource: 'shell', actions: new Map([['run', run]]) };
}
