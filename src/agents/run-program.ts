import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { attemptEnvironment, recordGroup, type AttemptTracking } from './attempt-record.js';
import { errnoOf } from './fs-util.js';
import { loadExeca } from './load-execa.js';
import { defaultKillAfterMs, endGroup, groupOfChild, type ProcessGroup } from './process-group.js';

/** How to run one program (see `runProgram`). */
export interface ProgramOptions {
  cwd?: string;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** Ends the program's whole process group when it fires: timeout, cancel, lease lost. */
  signal: AbortSignal;
  /** SIGTERM first, then SIGKILL after this many ms (default 2000). */
  killAfterMs?: number;
  /** Records the group under this attempt while it runs, so a later attempt can end it. */
  tracking?: AttemptTracking;
  /** Each chunk of stdout and stderr, in the order it arrives. */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

/**
 * How a program ended: it exited (by itself, or by a signal nobody here sent), it was stopped
 * because `signal` fired, or it never started (`errno` ENOENT: no such program or directory).
 */
export type ProgramEnd =
  | { kind: 'exited'; exitCode: number | null; signal: NodeJS.Signals | null }
  | { kind: 'aborted' }
  | { kind: 'not_started'; errno: string | undefined; message: string };

/** How long output still buffered in the pipes is read once the group is gone. */
const drainMs = 200;

/**
 * Runs `file` with `args` (an argv, never a shell) in a process group of its own (a new session,
 * execa `detached`), and ends the whole group — the program and everything it started that stayed
 * in the group — both when `signal` fires (SIGTERM, then SIGKILL after `killAfterMs`) and when the
 * program exits leaving processes behind, so nothing an action started outlives it. Resolves once
 * no process of the group is left, without waiting for pipes a process outside the group may hold
 * open. With `tracking`, the group is recorded while it runs (see attempt-record.ts); a group that
 * cannot be recorded is ended and the error thrown. Throws only when recording fails or a process
 * outlives SIGKILL (its record is then kept, so a later attempt tries again).
 */
export async function runProgram(
  file: string,
  args: readonly string[],
  options: ProgramOptions,
): Promise<ProgramEnd> {
  const child = (await loadExeca())(file, args, {
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    env: {
      ...options.env,
      ...(options.tracking === undefined ? {} : attemptEnvironment(options.tracking)),
    },
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
    buffer: false,
    reject: false,
    detached: true,
  });
  const settled = child.then(
    (result) => result,
    () => undefined,
  );
  if (child.pid === undefined) {
    const result = await settled;
    return {
      kind: 'not_started',
      errno: errnoOf(result?.cause),
      message: result?.shortMessage ?? `${file} did not start`,
    };
  }
  // Listened for before any await: the child's exit is not reported before the next turn.
  const exited = new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null }>(
    (resolve) => {
      child.once('exit', (exitCode, signal) => {
        resolve({ exitCode, signal });
      });
    },
  );
  const { stdout, stderr } = child;
  stdout.on('data', (chunk: Buffer) => options.onOutput?.(chunk, 'stdout'));
  stderr.on('data', (chunk: Buffer) => options.onOutput?.(chunk, 'stderr'));
  const killAfterMs = options.killAfterMs ?? defaultKillAfterMs;
  const stop = abortion(options.signal);
  try {
    const group = groupOfChild(child.pid); // before any await: the child is not yet reaped
    const forget = await record(options.tracking, group, file, killAfterMs);
    const first = await Promise.race([exited, stop.fired]);
    // After an abort: all of it. After an exit: what the program left running in its group.
    await endGroup(group, killAfterMs);
    const exit = first ?? (await exited);
    await drained([stdout, stderr], drainMs);
    await forget?.();
    return first === undefined ? { kind: 'aborted' } : { kind: 'exited', ...exit };
  } finally {
    stop.dispose();
    stdout.destroy();
    stderr.destroy();
  }
}

/** Records the group; if that fails, ends the group and throws. */
async function record(
  tracking: AttemptTracking | undefined,
  group: ProcessGroup,
  file: string,
  killAfterMs: number,
): Promise<(() => Promise<void>) | undefined> {
  if (tracking === undefined) return undefined;
  try {
    return await recordGroup(tracking, group, file);
  } catch (error) {
    await endGroup(group, killAfterMs);
    throw error;
  }
}

/** A promise that resolves (to undefined) when `signal` fires, and the removal of its listener. */
function abortion(signal: AbortSignal): { fired: Promise<undefined>; dispose: () => void } {
  let onAbort = (): void => undefined;
  const fired = new Promise<undefined>((resolve) => {
    onAbort = () => {
      resolve(undefined);
    };
  });
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  return {
    fired,
    dispose: () => {
      signal.removeEventListener('abort', onAbort);
    },
  };
}

/** Waits until the streams end, or `ms` passes (a process outside the group holds a pipe). */
async function drained(streams: Readable[], ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const ends = streams.map((stream) => finished(stream).catch(() => undefined));
  await Promise.race([
    Promise.all(ends),
    new Promise((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** The output of a program run by `runCollected`. */
export interface CollectedRun {
  end: ProgramEnd;
  stdout: string;
  stderr: string;
}

/** Bytes of each stream `runCollected` keeps (the last ones). */
const collectLimit = 1024 * 1024;

/**
 * `runProgram`, keeping stdout and stderr as text (the last MiB of each): for tools such as
 * qemu-img and cp whose output is small and read as a whole.
 */
export async function runCollected(
  file: string,
  args: readonly string[],
  options: Omit<ProgramOptions, 'onOutput'>,
): Promise<CollectedRun> {
  const out: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
  const size = { stdout: 0, stderr: 0 };
  const end = await runProgram(file, args, {
    ...options,
    onOutput: (chunk, stream) => {
      out[stream].push(chunk);
      size[stream] += chunk.length;
      while (size[stream] > collectLimit && out[stream].length > 1) {
        size[stream] -= out[stream].shift()?.length ?? 0;
      }
    },
  });
  return {
    end,
    stdout: Buffer.concat(out.stdout).toString('utf8'),
    stderr: Buffer.concat(out.stderr).toString('utf8'),
  };
}
