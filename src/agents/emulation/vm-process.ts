import { watch } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { abortedError } from '../abort.js';
import { errnoOf } from '../fs-util.js';

/** The pid in a qemu pid file, or undefined when there is none. */
export async function readPid(pidFile: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(pidFile, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** Whether `pid` is a live process (a zombie, exited but not reaped, counts as gone). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Whether `pid` is the qemu of the VM whose pid file is `pidFile`: alive and with that exact pid
 * file in its command line. A recycled pid of another process never passes.
 */
export async function isOurQemu(pid: number, pidFile: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  try {
    const args = (await readFile(`/proc/${String(pid)}/cmdline`, 'utf8')).split('\0');
    return args.some((a) => a.includes('qemu-system')) && args.includes(pidFile);
  } catch {
    return false;
  }
}

/**
 * Waits until `pid` is gone, or `timeoutMs` passes (false). `woken` (e.g. the QMP connection
 * closing) ends a wait early; the pid is otherwise checked every 50 ms, as a process that is not
 * our child gives no event of its exit.
 */
export async function waitForExit(
  pid: number,
  timeoutMs: number,
  signal: AbortSignal,
  woken?: Promise<unknown>,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let wake = false;
  void woken?.then(() => (wake = true));
  for (;;) {
    if (!(await isAlive(pid))) return true;
    if (signal.aborted) throw abortedError(signal, 'Waiting for qemu to exit');
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, wake ? 10 : 50));
  }
}

async function readTail(path: string, bytes: number): Promise<string> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - bytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/** The last `bytes` of the console log, for errors and `ready_when`. */
export function consoleTail(path: string, bytes = 4096): Promise<string> {
  return readTail(path, bytes);
}

/** Why `waitForConsole` ended. */
export type ConsoleWait = 'matched' | 'timeout' | 'exited';

/**
 * Waits until the console log matches `pattern` (tested on its last 256 KiB), the VM exits, or
 * `timeoutMs` passes. Woken by file change events, with a slow re-check as a fallback where
 * change events are not delivered.
 */
export async function waitForConsole(
  path: string,
  pattern: RegExp,
  options: { timeoutMs: number; signal: AbortSignal; alive: () => Promise<boolean> },
): Promise<ConsoleWait> {
  const deadline = Date.now() + options.timeoutMs;
  let poke: (() => void) | undefined;
  let watcher: ReturnType<typeof watch> | undefined;
  try {
    watcher = watch(path, () => poke?.());
  } catch {
    watcher = undefined; // the re-check below still finds the match
  }
  try {
    for (;;) {
      if (pattern.test(await readTail(path, 256 * 1024))) return 'matched';
      if (options.signal.aborted) throw abortedError(options.signal, 'Waiting for the console');
      if (!(await options.alive())) return 'exited';
      const left = deadline - Date.now();
      if (left <= 0) return 'timeout';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 250));
        poke = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  } finally {
    watcher?.close();
  }
}
